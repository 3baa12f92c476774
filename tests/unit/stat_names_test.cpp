// Its own binary: it fills the process-wide stat name table to its cap.
#include <gtest/gtest.h>

#include <string>

#include "server/rollup.h"
#include "server/rollup_record.h"

namespace statherd::server {
namespace {

TEST(StatNames, TheTableIsCappedAndTheSketchQuantilesNamesAreAlwaysIn) {
  // A summary's p50 seen before the table fills keeps its names.
  Distribution d;
  d.form = Distribution::Form::Summary;
  d.count = 4;
  d.sum = 8;
  d.quantiles = {{0.5, 1.0}};
  StatValues stats;
  distribution_stats({&d}, stats);

  // Agents' summaries can name any quantile: past the cap a new name is refused ("").
  size_t refused = 0;
  for (int i = 0; i < static_cast<int>(kMaxStatNames) + 100; ++i)
    refused += stat_name("p" + std::to_string(i) + "_max").empty();
  EXPECT_GE(refused, 100u);
  EXPECT_LE(refused, 100u + 20);  // the table starts with the rollup's 16 names and p50's 2
  EXPECT_TRUE(stat_name("p123456789_max").empty());
  EXPECT_EQ(stat_name("p5_max"), "p5_max");  // known names still resolve
  for (const char* q : {"p50", "p75", "p90", "p95", "p99", "p999"})
    EXPECT_EQ(stat_name(q), q);
  EXPECT_EQ(quantile_stat_name(0.999), "p999");

  // A stat whose name is refused is not emitted; the record's other stats are.
  IntervalOutput out;
  out.add(make_series_key(Level::App, "a", "", -1, "m", {}), SeriesKind::Distribution);
  out.stat("count", 3);
  out.stat("p31415_avg", 1);
  ASSERT_EQ(out.stats.size(), 1u);
  EXPECT_EQ(out.records[0].stat_count, 1u);

  // A summary with a refused quantile keeps its count, sum and known quantiles.
  d.quantiles = {{0.5, 1.0}, {0.123456, 2.0}};
  stats.clear();
  distribution_stats({&d}, stats);
  auto has = [&](std::string_view n) {
    for (const auto& [name, v] : stats)
      if (name == n) return true;
    return false;
  };
  EXPECT_TRUE(has("count"));
  EXPECT_TRUE(has("p50_max"));
  EXPECT_FALSE(has("p123456_max"));
  for (const auto& [name, v] : stats) EXPECT_FALSE(name.empty());
}

}  // namespace
}  // namespace statherd::server
