// The snapshot's checksum (version 4): a snapshot that does not verify never stops the server
// and never loads silently; it is moved into quarantine/ and the state comes from the WAL files
// still there (found by the hostile review: single-bit flips either refused the start or
// loaded wrong state). Snapshots of version 3 (no checksum) still load.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine_test_util.h"
#include "snapshot_test_util.h"
#include "server/engine.h"
#include "server/wal.h"

namespace statherd::server {
namespace {

using namespace testing;
constexpr int64_t T0 = 1'700'000'000'000;
constexpr int64_t S0 = T0 / 1000;

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/statherd-snapcheck-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

EngineOptions opts(const std::string& dir) {
  EngineOptions o;
  o.state_dir = dir;
  o.fsync = false;
  return o;
}

std::string counter_batch(uint64_t seq, double v, int64_t ts) {
  return batch("agent", seq, {source(1, {counter("req", v, ts)})});
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Batches 1-2 are in the snapshot (their WAL file retired), batch 3 only in the WAL.
std::string make_state(const std::string& root) {
  std::string dir = root + "/state";
  Engine e(opts(dir));
  EXPECT_TRUE(e.open(T0).ok());
  e.ingest(counter_batch(1, 0, T0), T0);
  e.ingest(counter_batch(2, 10, T0 + 1000), T0 + 1000);
  e.drain(T0 + 2000);
  e.ingest(counter_batch(3, 17, T0 + 12'000), T0 + 12'000);
  return dir;  // crash: no drain
}

TEST(SnapshotChecksum, EverySingleBitFlipIsQuarantinedAndTheWalStillReplays) {
  TempDir tmp;
  const std::string dir = make_state(tmp.path);
  const std::string good = read_all(dir + "/snapshot");
  ASSERT_GT(good.size(), 100u);
  EXPECT_EQ(good.substr(good.size() - 8, 4), "SHSC");
  size_t checked = 0;
  for (size_t offset = 0; offset < good.size(); offset += 1 + good.size() / 40) {
    for (int bit : {0, 5}) {
      const std::string copy = tmp.path + "/copy";
      std::filesystem::remove_all(copy);
      std::filesystem::copy(dir, copy, std::filesystem::copy_options::recursive);
      std::string flipped = good;
      flipped[offset] = static_cast<char>(flipped[offset] ^ (1 << bit));
      write_all(copy + "/snapshot", flipped);
      Engine r(opts(copy));
      ASSERT_TRUE(r.open(T0 + 13'000).ok()) << "offset " << offset << " bit " << bit;
      EXPECT_NE(r.stats().snapshot_quarantined.find(copy + "/quarantine/snapshot-"),
                std::string::npos)
          << offset;
      EXPECT_EQ(r.stats().batches, 1u) << offset;  // batch 3 from the WAL, nothing else
      EXPECT_TRUE(std::filesystem::exists(copy + "/snapshot"));  // rewritten after recovery
      EXPECT_EQ(read_all(r.stats().snapshot_quarantined), flipped);
      ++checked;
    }
  }
  EXPECT_GE(checked, 40u);
}

TEST(SnapshotChecksum, IntactAndVersion3SnapshotsLoad) {
  TempDir tmp;
  const std::string dir = make_state(tmp.path);
  {
    Engine r(opts(dir));
    ASSERT_TRUE(r.open(T0 + 13'000).ok());
    EXPECT_TRUE(r.stats().snapshot_quarantined.empty());
    EXPECT_EQ(r.stats().batches, 3u);
  }
  // A version 3 snapshot of an earlier build: CBOR only, no trailer.
  TempDir tmp3;
  const std::string dir3 = make_state(tmp3.path);
  std::string bytes = read_all(dir3 + "/snapshot");
  nlohmann::json j = nlohmann::json::from_cbor(bytes.substr(0, bytes.size() - 8));
  j["version"] = 3;
  testing::unpack_snapshot_cells(j);
  std::vector<uint8_t> v3 = nlohmann::json::to_cbor(j);
  write_all(dir3 + "/snapshot", std::string(v3.begin(), v3.end()));
  Engine r(opts(dir3));
  ASSERT_TRUE(r.open(T0 + 13'000).ok());
  EXPECT_TRUE(r.stats().snapshot_quarantined.empty());
  EXPECT_EQ(r.stats().batches, 3u);
  auto out = r.flush(T0 + 22'000);
  EXPECT_EQ(point(out, S0 + 10, Level::App, "req", "count"), 7.0);  // 17 - 10: baseline kept
  // Version 4 with its trailer cut off is damage, not an old snapshot.
  TempDir tmp4;
  const std::string dir4 = make_state(tmp4.path);
  std::string cut = read_all(dir4 + "/snapshot");
  write_all(dir4 + "/snapshot", cut.substr(0, cut.size() - 8));
  Engine r4(opts(dir4));
  ASSERT_TRUE(r4.open(T0 + 13'000).ok());
  EXPECT_FALSE(r4.stats().snapshot_quarantined.empty());
}

// Another user deleted the snapshot (hostile review, t_statedir.py): the WAL files it retired
// are gone too, so the server says that batches were lost instead of starting quietly.
TEST(SnapshotChecksum, MissingSnapshotWithRetiredWalFilesIsWarnedAbout) {
  TempDir tmp;
  const std::string dir = make_state(tmp.path);
  ASSERT_EQ(list_wal_files(dir).front(), 1u);  // wal-0 retired by the snapshot
  std::filesystem::remove(dir + "/snapshot");
  ::testing::internal::CaptureStderr();
  Engine r(opts(dir));
  ASSERT_TRUE(r.open(T0 + 13'000).ok());
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("has no snapshot, but its WAL starts at wal-0000000000000001.log"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("are lost"), std::string::npos) << log;
  EXPECT_EQ(r.stats().batches, 1u);
}

}  // namespace
}  // namespace statherd::server
