// The remote_write outbox (the request in flight, kept on disk until its answer is known) and the
// cuts a refused batch takes when the receiver holds samples the server lost track of.
#include "server/sinks/remote_write_outbox.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "server/sinks/remote_write_cuts.h"
#include "temp_dir.h"

namespace statherd::server {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

RwPending pending() {
  RwPending p;
  p.url = "http://127.0.0.1:9090/api/v1/write";
  p.marks = {{"__name__\x1f" "a\x1e", 7000}, {"__name__\x1f" "b\x1e", -5}};
  p.body = std::string("\x00\x01snappy\xff", 9);
  return p;
}

void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

TEST(RwOutbox, KeepsTheRequestInFlightAcrossARestart) {
  TempDir dir;
  const std::string path = dir.path + "/remote_write.outbox";
  {
    RwOutbox first(path);
    EXPECT_FALSE(first.left_over().has_value());
    first.put(pending());
  }
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  RwOutbox second(path);
  auto got = second.left_over();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->url, pending().url);
  EXPECT_EQ(got->marks, pending().marks);
  EXPECT_EQ(got->body, pending().body) << "the exact bytes that were sent";
  second.clear();
  EXPECT_FALSE(RwOutbox(path).left_over().has_value());
}

TEST(RwOutbox, EveryTruncationAndAnyFlippedByteIsRefused) {
  const std::string good = encode_rw_pending(pending());
  ASSERT_TRUE(decode_rw_pending(good));
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(decode_rw_pending(std::string_view(good).substr(0, n))) << "torn at " << n;
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x40;
    EXPECT_FALSE(decode_rw_pending(bad)) << "byte " << i << " flipped";
  }
  EXPECT_FALSE(decode_rw_pending(good + "x")) << "trailing garbage";
}

TEST(RwOutbox, DamagedFileIsMovedAsideAndIgnored) {
  TempDir dir;
  const std::string path = dir.path + "/remote_write.outbox";
  write_raw(path, "SHRWOB1\n\xff\xff\xff\xff garbage");
  RwOutbox outbox(path);
  EXPECT_FALSE(outbox.left_over().has_value());
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::exists(path + ".damaged")) << "its bytes are kept for inspection";
  outbox.put(pending());
  EXPECT_TRUE(outbox.left_over().has_value()) << "a new request is kept again";
}

// A FIFO at the outbox's path blocked remote_write (and the shutdown) for good; a symbolic link
// was followed. Neither is read: both are set aside, and the sink goes on.
TEST(RwOutbox, AFifoOrASymlinkIsSetAsideUnread) {
  TempDir dir;
  const std::string path = dir.path + "/remote_write.outbox";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  RwOutbox outbox(path);
  EXPECT_FALSE(outbox.left_over().has_value());  // returns: does not wait for a writer
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::exists(path + ".damaged"));
  fs::remove(path + ".damaged");
  // A link to a valid outbox elsewhere is refused too: the state dir holds regular files only.
  const std::string real = dir.path + "/elsewhere";
  RwOutbox(real).put(pending());
  fs::create_symlink(real, path);
  EXPECT_FALSE(outbox.left_over().has_value());
  EXPECT_FALSE(fs::is_symlink(path));
  EXPECT_TRUE(fs::exists(real)) << "the link's target is left alone";
}

TEST(RwOutbox, UnwritableDirectoryOnlyLosesTheCrashCover) {
  RwOutbox outbox("/nonexistent-dir/remote_write.outbox");
  outbox.put(pending());
  EXPECT_FALSE(outbox.left_over().has_value());
  outbox.clear();
}

RwSeries rw(const std::string& name, std::vector<int64_t> timestamps) {
  RwSeries s;
  s.labels = {{"__name__", name}};
  for (int64_t t : timestamps) s.samples.push_back({1, t});
  return s;
}

constexpr int64_t kNoHint = std::numeric_limits<int64_t>::min();

TEST(RwStaleCuts, OldestTimestampsFirstInGrowingStepsNeverFromTheEpochOn) {
  const std::vector<RwSeries> batch = {rw("a", {1000, 2000, 3000, 4000, 5000, 6000, 9000}),
                                       rw("b", {2000, 7000})};
  // Seven distinct timestamps before the epoch (8000): drop 1, 2, 4, then all 7 of them.
  EXPECT_EQ(rw_stale_cuts(batch, 8000, kNoHint), (std::vector<int64_t>{1000, 2000, 4000, 7000}));
  EXPECT_EQ(rw_stale_cuts(batch, 3000, kNoHint), (std::vector<int64_t>{1000, 2000}));
  EXPECT_TRUE(rw_stale_cuts(batch, 1000, kNoHint).empty()) << "nothing before the epoch";
  // The newest timestamp sent to the previous URL is tried first.
  EXPECT_EQ(rw_stale_cuts(batch, 8000, 5500), (std::vector<int64_t>{5000, 7000}));
  EXPECT_EQ(rw_stale_cuts(batch, 8000, 500), (std::vector<int64_t>{1000, 2000, 4000, 7000}));
}

TEST(RwStaleCuts, DropAtOrBeforeRemovesEmptiedSeries) {
  std::vector<RwSeries> batch = {rw("a", {1000, 2000, 3000}), rw("b", {2000})};
  EXPECT_EQ(rw_drop_at_or_before(batch, 2000), 3u);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].samples.size(), 1u);
  EXPECT_EQ(batch[0].samples[0].timestamp_ms, 3000);
}

}  // namespace
}  // namespace statherd::server
