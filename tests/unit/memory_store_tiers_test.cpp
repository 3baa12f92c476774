// The memory store's downsampled tiers (server/history_series.h): how buckets are computed,
// which tier a query reads, re-emission through the tiers, and expiry.
#include "server/memory_store.h"
#include "rollup_test_util.h"

#include <gtest/gtest.h>

namespace statherd::server {
namespace {

SeriesPoint point(std::string stat, double value, bool amount = false) {
  SeriesPoint p;
  p.level = Level::App;
  p.app = "web";
  p.metric = "req";
  p.stat = std::move(stat);
  p.value = value;
  if (amount) p.total = value;
  return p;
}

// The four downsampling kinds plus a gauge's sum, each with a value that changes every interval.
IntervalOutput output(int64_t start_s, double v, int64_t interval_s = 10) {
  std::vector<SeriesPoint> points = {point("count", v, true), point("min", v), point("max", v),
                                     point("mean", v), point("sum", v)};
  points.push_back(point("sum", v, true));  // a distribution's sum: an amount
  points.back().metric = "lat";
  return testing::output_of(start_s, interval_s, points);
}

nlohmann::json points_of(const MemoryStore& store, const std::string& stat, int64_t from,
                         int64_t until) {
  nlohmann::json r = store.render({"statherd.web.req." + stat}, from, until);
  return r.empty() ? nlohmann::json() : r[0]["datapoints"];
}

const MemoryStoreOptions kTwoMinutesOneHour{std::vector<RetentionTier>{{10, 120}, {60, 3600}},
                                            1000, "statherd"};

// One interval's value i at t = 1200 + 10 i, i = 0..17 (three minutes).
void three_minutes(MemoryStore& store) {
  for (int i = 0; i < 18; ++i) store.emit(output(1200 + 10 * i, i));
}

TEST(MemoryStoreTiers, CoarseTierSumsCountsKeepsMinMaxAndAveragesTheRest) {
  MemoryStore store(kTwoMinutesOneHour);
  three_minutes(store);
  // from 1190 < now (1370) - 2m: the 1m tier. Buckets 1200 (i 0..5), 1260 (6..11), 1320
  // (12..17, still open: computed from the 10s tier when read).
  EXPECT_EQ(points_of(store, "count", 1190, 1370),
            nlohmann::json::parse("[[15.0, 1200], [51.0, 1260], [87.0, 1320]]"));
  EXPECT_EQ(points_of(store, "min", 1190, 1370),
            nlohmann::json::parse("[[0.0, 1200], [6.0, 1260], [12.0, 1320]]"));
  EXPECT_EQ(points_of(store, "max", 1190, 1370),
            nlohmann::json::parse("[[5.0, 1200], [11.0, 1260], [17.0, 1320]]"));
  EXPECT_EQ(points_of(store, "mean", 1190, 1370),
            nlohmann::json::parse("[[2.5, 1200], [8.5, 1260], [14.5, 1320]]"));
  // A gauge's sum (no running total: a level) is averaged; a distribution's sum is summed.
  EXPECT_EQ(points_of(store, "sum", 1190, 1370),
            nlohmann::json::parse("[[2.5, 1200], [8.5, 1260], [14.5, 1320]]"));
  EXPECT_EQ(store.render({"statherd.web.lat.sum"}, 1190, 1370)[0]["datapoints"],
            nlohmann::json::parse("[[15.0, 1200], [51.0, 1260], [87.0, 1320]]"));
}

TEST(MemoryStoreTiers, QueryReadsTheFinestTierWhoseRetentionCoversFrom) {
  MemoryStore store(kTwoMinutesOneHour);
  three_minutes(store);
  // from 1250 >= 1370 - 120: the 10s tier, points at 10s from the first step after `from`.
  nlohmann::json fine = points_of(store, "count", 1250, 1370);
  ASSERT_EQ(fine.size(), 12u);
  EXPECT_EQ(fine[0], nlohmann::json::parse("[6.0, 1260]"));
  EXPECT_EQ(fine[11], nlohmann::json::parse("[17.0, 1370]"));
  // One second further back: the 1m tier.
  EXPECT_EQ(points_of(store, "count", 1249, 1370).size(), 2u);  // 1260, 1320
  // Older than every tier: the coarsest, cut at its retention (now - 1h; here at 0).
  nlohmann::json coarse = points_of(store, "count", 0, 1370);
  ASSERT_EQ(coarse.size(), 22u);  // 60, 120, ... 1320
  EXPECT_EQ(coarse[0], nlohmann::json::parse("[null, 60]"));
  EXPECT_EQ(coarse[21], nlohmann::json::parse("[87.0, 1320]"));
  MemoryStore sparse({std::vector<RetentionTier>{{10, 120}, {60, 3600}}, 1000, "statherd"});
  sparse.emit(output(1200, 1));
  EXPECT_EQ(sparse.tiers_text(), "10s:2m,1m:1h");
}

nlohmann::json value_at(const nlohmann::json& points, int64_t ts) {
  for (const auto& p : points)
    if (p[1] == ts) return p[0];
  return "absent";
}

TEST(MemoryStoreTiers, ReemissionRewritesTheClosedBucketsAbove) {
  MemoryStore store({std::vector<RetentionTier>{{10, 300}, {60, 3600}}, 1000, "statherd"});
  for (int i = 0; i < 18; ++i) store.emit(output(1200 + 10 * i, i));
  // Late data re-emits interval 1210 (i = 1) with its full new value, after its 1m bucket
  // closed: the 10s point and the 1m bucket change.
  IntervalOutput again = output(1210, 101);
  again.reemit = true;
  store.emit(again);
  EXPECT_EQ(points_of(store, "count", 1200, 1220),
            nlohmann::json::parse("[[101.0, 1210], [2.0, 1220]]"));
  // from 1000 < now (1370) - 5m: the 1m tier.
  EXPECT_EQ(value_at(points_of(store, "count", 1000, 1370), 1200), 115.0);
  EXPECT_EQ(value_at(points_of(store, "max", 1000, 1370), 1200), 101.0);
  EXPECT_EQ(value_at(points_of(store, "min", 1000, 1370), 1200), 0.0);
  EXPECT_EQ(value_at(points_of(store, "mean", 1000, 1370), 1200), 115.0 / 6);
  EXPECT_EQ(value_at(points_of(store, "count", 1000, 1370), 1260), 51.0);  // untouched
}

TEST(MemoryStoreTiers, ReemissionInsideTheOpenBucketCountsTheNewValueOnce) {
  MemoryStore store({std::vector<RetentionTier>{{10, 300}, {60, 3600}}, 1000, "statherd"});
  for (int i = 0; i < 3; ++i) store.emit(output(1200 + 10 * i, i));  // bucket 1200 open
  IntervalOutput again = output(1210, 101);  // replaces a point of the open bucket
  again.reemit = true;
  store.emit(again);
  again = output(1220, 50);  // and the newest one
  again.reemit = true;
  store.emit(again);
  // Read while open (computed on the fly), then closed by the next minute's points.
  EXPECT_EQ(value_at(points_of(store, "count", 900, 1230), 1200), 151.0);  // the 1m tier
  for (int i = 3; i < 12; ++i) store.emit(output(1200 + 10 * i, i));
  EXPECT_EQ(value_at(points_of(store, "count", 1000, 1370), 1200), 0 + 101 + 50 + 3 + 4 + 5.0);
  EXPECT_EQ(value_at(points_of(store, "max", 1000, 1370), 1200), 101.0);
  EXPECT_EQ(value_at(points_of(store, "min", 1000, 1370), 1200), 0.0);
  EXPECT_EQ(value_at(points_of(store, "mean", 1000, 1370), 1200), 163.0 / 6);
  // The next bucket, all in order (folded as the points arrived), and one point of a bucket
  // that went quiet, closed by expiry rather than by a later point.
  EXPECT_EQ(value_at(points_of(store, "count", 1000, 1370), 1260), 51.0);
  EXPECT_EQ(value_at(points_of(store, "mean", 1000, 1370), 1260), 8.5);
}

TEST(MemoryStoreTiers, RetentionExpiresEachTierAndForgetsPathsAtTheLongest) {
  MemoryStore store({std::vector<RetentionTier>{{10, 60}, {60, 600}}, 1000, "statherd"});
  for (int i = 0; i < 30; ++i) store.emit(output(6000 + 10 * i, i));  // 6000..6290
  IntervalOutput other = testing::output_of(6300, 10, {point("p99", 1)});
  store.emit(other);  // only p99 from now on
  // The 10s tier holds the last minute only; the 1m tier the rest.
  EXPECT_EQ(points_of(store, "count", 6240, 6300).size(), 6u);  // 6250..6300, 10s steps
  EXPECT_EQ(points_of(store, "count", 5999, 6300),
            nlohmann::json::parse("[[15.0, 6000], [51.0, 6060], [87.0, 6120], [123.0, 6180], "
                                  "[159.0, 6240], [null, 6300]]"));
  EXPECT_EQ(store.path_count(), 7u);
  for (int64_t t = 6310; t <= 6830; t += 10) {
    other.start_s = t;
    store.emit(other);
  }
  // At 6830 the 1m tier keeps 6230..: of the count path only its last bucket, 6240.
  nlohmann::json left = points_of(store, "count", 0, 6830);
  ASSERT_EQ(left.size(), 10u);  // 6240 .. 6780
  EXPECT_EQ(left[0], nlohmann::json::parse("[159.0, 6240]"));
  for (size_t i = 1; i < left.size(); ++i) EXPECT_TRUE(left[i][0].is_null()) << left[i];
  EXPECT_EQ(points_of(store, "count", 6800, 6830),  // the 10s tier: nothing since 6290
            nlohmann::json::parse("[[null, 6810], [null, 6820], [null, 6830]]"));
  EXPECT_EQ(store.path_count(), 7u);
  other.start_s = 6850;  // 6240 is older than 6850 - 10m: nothing of the five paths is left
  store.emit(other);
  EXPECT_EQ(store.path_count(), 1u);  // only p99
  EXPECT_EQ(store.render({"statherd.web.req.count"}, 0, 6850).size(), 0u);
  EXPECT_EQ(store.find("statherd.web.req.*").size(), 1u);
}

TEST(MemoryStoreTiers, FirstTierCoarserThanTheIntervalStillOverwrites) {
  // 1m:1h at a 10s interval: a hidden 10s tier feeds the 1m one.
  MemoryStore store({std::vector<RetentionTier>{{60, 3600}}, 1000, "statherd"});
  for (int i = 0; i < 12; ++i) store.emit(output(1200 + 10 * i, i));
  EXPECT_EQ(store.tiers_text(), "1m:1h");
  IntervalOutput again = output(1200, 100);
  again.reemit = true;
  store.emit(again);
  EXPECT_EQ(points_of(store, "count", 1190, 1310),
            nlohmann::json::parse("[[115.0, 1200], [51.0, 1260]]"));
}

TEST(MemoryStoreTiers, StoreIsCompactForARegularSeries) {
  MemoryStore store({});
  for (int i = 0; i < 360; ++i) store.emit(output(1'700'000'000 + 10 * i, 100 + i % 7));
  MemoryStoreStats s = store.stats();
  EXPECT_EQ(s.paths, 6u);
  EXPECT_GE(s.points, 6u * 360);
  // An hour of 6 paths at 10s in far less than the old 16 bytes a point.
  EXPECT_LT(s.series_bytes, 6u * 360 * 4);
}

}  // namespace
}  // namespace statherd::server
