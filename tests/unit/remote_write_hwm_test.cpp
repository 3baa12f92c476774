// The remote_write high-water marks (issue #15 item 2): a sample at or before its series' last
// accepted timestamp is never sent again, the newest accepted timestamp survives a restart
// (the floor re-emitted intervals are filtered by), and belongs to its URL only.
#include "server/sinks/remote_write_hwm.h"
#include "temp_dir.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace statherd::server {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

RwSeries rw(const std::string& name, std::vector<int64_t> timestamps, double value = 1) {
  RwSeries s;
  s.labels = {{"__name__", name}, {"app", "web"}};
  for (int64_t t : timestamps) s.samples.push_back({value, t});
  return s;
}

std::vector<int64_t> times(const RwSeries& s) {
  std::vector<int64_t> out;
  for (const RwSample& x : s.samples) out.push_back(x.timestamp_ms);
  return out;
}

TEST(RwHighWater, DropsSamplesAtOrBeforeTheSeriesMarkOnly) {
  RwHighWater hwm("", "http://r/api/v1/write");
  hwm.accepted({rw("a", {1000, 2000}), rw("b", {1000})});
  std::vector<RwSeries> batch = {rw("a", {1000, 2000, 3000}), rw("b", {2000}), rw("c", {500})};
  EXPECT_EQ(hwm.filter(batch), 2u);
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(times(batch[0]), (std::vector<int64_t>{3000}));
  EXPECT_EQ(times(batch[1]), (std::vector<int64_t>{2000}));  // b's own mark is 1000
  EXPECT_EQ(times(batch[2]), (std::vector<int64_t>{500}));   // never accepted: no mark
  std::vector<RwSeries> stale = {rw("a", {2000})};
  EXPECT_EQ(hwm.filter(stale), 1u);
  EXPECT_TRUE(stale.empty()) << "a series left without samples is not sent";
}

TEST(RwHighWater, NewestAcceptedTimestampIsTheFloorAfterARestart) {
  TempDir dir;
  const std::string path = dir.path + "/remote_write.hwm", url = "http://r:9090/api/v1/write";
  {
    RwHighWater first(path, url);
    EXPECT_EQ(first.floor_ms(), std::numeric_limits<int64_t>::min());
    first.accepted({rw("a", {1000, 2000})});
    first.accepted({rw("b", {7000})});
    first.accepted({rw("a", {3000})});  // older than b's: the file keeps the newest
  }
  RwHighWater second(path, url);
  EXPECT_EQ(second.floor_ms(), 7000);
  // What the engine re-emits after a SIGKILL (intervals up to 7000), then new intervals.
  std::vector<RwSeries> batch = {rw("a", {5000, 7000, 8000}), rw("c", {6000}), rw("b", {9000})};
  EXPECT_EQ(second.filter(batch), 3u);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(times(batch[0]), (std::vector<int64_t>{8000}));
  EXPECT_EQ(times(batch[1]), (std::vector<int64_t>{9000}));
  second.accepted(batch);
  RwHighWater third(path, url);
  EXPECT_EQ(third.floor_ms(), 9000);
}

TEST(RwHighWater, FloorBelongsToItsUrl) {
  TempDir dir;
  const std::string path = dir.path + "/remote_write.hwm";
  { RwHighWater(path, "http://old:9090/api/v1/write").accepted({rw("a", {7000})}); }
  RwHighWater other(path, "http://new:9090/api/v1/write");
  std::vector<RwSeries> batch = {rw("a", {5000})};
  EXPECT_EQ(other.filter(batch), 0u) << "a new receiver holds none of the old one's samples";
  RwHighWater same(path, "http://old:9090/api/v1/write");
  same.set_url("http://new:9090/api/v1/write");
  EXPECT_EQ(same.filter(batch), 0u);
}

TEST(RwHighWater, UnwritableFileOnlyLosesTheFloor) {
  RwHighWater hwm("/nonexistent-dir/remote_write.hwm", "http://r/");
  hwm.accepted({rw("a", {1000})});
  std::vector<RwSeries> batch = {rw("a", {1000, 2000})};
  EXPECT_EQ(hwm.filter(batch), 1u);
}

TEST(RwHighWater, GarbageOrTornFileGivesNoFloorAndIsReplacedDurably) {
  TempDir dir;
  const std::string path = dir.path + "/remote_write.hwm", url = "http://r:9090/api/v1/write";
  for (const std::string& bad : {std::string("7000"), std::string("7000 " + url),
                                std::string("x7000 " + url + "\n"),
                                std::string("7000 " + url + " extra\n"), std::string("\0\0\0", 3),
                                std::string("99999999999999999999999 " + url + "\n")}) {
    std::ofstream(path, std::ios::trunc) << bad;
    RwHighWater hwm(path, url);
    EXPECT_EQ(hwm.floor_ms(), std::numeric_limits<int64_t>::min()) << bad;
    hwm.accepted({rw("a", {8000})});
    EXPECT_EQ(RwHighWater(path, url).floor_ms(), 8000) << "rewritten whole after " << bad;
  }
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

TEST(RwHighWater, AnotherUrlsFloorIsOnlyAHint) {
  TempDir dir;
  const std::string path = dir.path + "/remote_write.hwm";
  { RwHighWater(path, "http://localhost:9090/api/v1/write").accepted({rw("a", {7000})}); }
  RwHighWater alias(path, "http://127.0.0.1:9090/api/v1/write");
  EXPECT_EQ(alias.floor_ms(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(alias.hint_ms(), 7000);
  alias.accepted({rw("a", {9000})});
  alias.set_url("http://other:9090/api/v1/write");
  EXPECT_EQ(alias.hint_ms(), 9000) << "the newest sent to the URL before";
}

}  // namespace
}  // namespace statherd::server
