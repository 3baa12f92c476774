#include "server/history_series.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace statherd::server {
namespace {

std::vector<std::pair<int64_t, double>> points(const HistorySeries& s,
                                               const std::vector<RetentionTier>& tiers, size_t t) {
  std::vector<std::pair<int64_t, double>> out;
  s.visit(tiers, t, 0, INT64_MAX, [&](int64_t ts, double v) { out.emplace_back(ts, v); });
  return out;
}

// The tiers live in one hand-made block: moving a series (as expiry compaction does, onto
// itself too) keeps every tier's points and open bucket; a moved-from one holds nothing.
TEST(HistorySeries, MovesKeepEveryTierAndSelfMoveIsHarmless) {
  const std::vector<RetentionTier> tiers{{1, 3600}, {10, 6 * 3600}, {300, 7 * 86400}};
  HistorySeries s(tiers.size(), Downsample::Sum);
  for (int64_t ts = 1000; ts < 1025; ++ts) s.put(tiers, ts, static_cast<double>(ts - 999));
  const auto t0 = points(s, tiers, 0), t1 = points(s, tiers, 1), t2 = points(s, tiers, 2);
  ASSERT_EQ(t0.size(), 25u);
  ASSERT_EQ(t1.size(), 3u);  // 1000-1009, 1010-1019 closed; 1020-1024 open
  EXPECT_EQ(t1[0].second, 55.0);
  EXPECT_EQ(t1[2].second, 21.0 + 22 + 23 + 24 + 25);
  ASSERT_EQ(t2.size(), 1u);  // the open 5-minute bucket: every closed 10 s point so far
  EXPECT_EQ(t2[0].second, 55.0 + 155.0);

  HistorySeries moved(std::move(s));
  EXPECT_EQ(points(moved, tiers, 0), t0);
  EXPECT_EQ(points(moved, tiers, 1), t1);
  EXPECT_EQ(points(moved, tiers, 2), t2);
  EXPECT_EQ(s.memory_bytes(tiers.size()), 0u);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(s.point_count(tiers.size()), 0u);   // NOLINT(bugprone-use-after-move)

  HistorySeries& same = moved;
  moved = std::move(same);
  EXPECT_EQ(points(moved, tiers, 0), t0);
  EXPECT_EQ(moved.point_count(tiers.size()), 25u + 2u);

  HistorySeries other(tiers.size(), Downsample::Max);
  other.put(tiers, 5000, 1.0);
  other = std::move(moved);  // the old block of `other` is freed (ASan checks)
  EXPECT_EQ(points(other, tiers, 1), t1);
  EXPECT_EQ(other.downsample(), Downsample::Sum);
  EXPECT_EQ(other.memory_bytes(tiers.size()) >= 72u + 2 * 88u, true);
}

}  // namespace
}  // namespace statherd::server
