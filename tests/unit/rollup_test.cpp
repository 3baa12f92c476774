#include "server/rollup.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "server/rollup_record.h"

namespace statherd::server {
namespace {

TEST(Rollup, QuantileNames) {
  EXPECT_EQ(quantile_stat_name(0.5), "p50");
  EXPECT_EQ(quantile_stat_name(0.99), "p99");
  EXPECT_EQ(quantile_stat_name(0.999), "p999");
  EXPECT_EQ(quantile_stat_name(0.9999), "p9999");
  EXPECT_EQ(quantile_stat_name(0.75), "p75");
}

TEST(SeriesKeyRef, CountsCopiesMovesAndSelfAssignment) {
  SeriesKeyRef a = make_series_key(Level::Host, "web", "h1", -1, "req", {{"dc", "eu"}});
  ASSERT_TRUE(a);
  EXPECT_EQ(a.use_count(), 1u);
  SeriesKeyRef b = a;
  EXPECT_EQ(a.use_count(), 2u);
  EXPECT_TRUE(a == b);
  SeriesKeyRef c(std::move(b));
  EXPECT_FALSE(b);  // NOLINT(bugprone-use-after-move): moved-from is empty, as shared_ptr's
  EXPECT_EQ(c.use_count(), 2u);
  SeriesKeyRef& same = c;  // through a reference: no self-assignment warning
  c = same;
  EXPECT_EQ(c.use_count(), 2u);
  c = std::move(same);  // self-move too
  EXPECT_EQ(a.use_count(), 2u);
  SeriesKeyRef d(a.get());  // from a record's plain pointer
  EXPECT_EQ(a.use_count(), 3u);
  EXPECT_EQ(d->metric, "req");
  EXPECT_EQ(d->tags, (Tags{{"dc", "eu"}}));
  d = nullptr;
  c = SeriesKeyRef();
  EXPECT_EQ(a.use_count(), 1u);
  EXPECT_EQ(SeriesKeyRef().use_count(), 0u);
  // Another key: distinct, with a fresh id.
  SeriesKeyRef e = make_series_key(Level::Host, "web", "h1", -1, "req", {{"dc", "eu"}});
  EXPECT_FALSE(a == e);
  EXPECT_NE(a->id, e->id);
}

// A record added with its key keeps it alive: the output holds the reference.
TEST(SeriesKeyRef, AnOutputHoldsTheKeysItWasGiven) {
  IntervalOutput out;
  SeriesKeyRef key = make_series_key(Level::App, "a", "", -1, "m", {});
  out.add(key, SeriesKind::Gauge);
  EXPECT_EQ(out.records[0].key, key.get());
  EXPECT_EQ(key.use_count(), 2u);
  IntervalOutput moved = std::move(out);
  EXPECT_EQ(key.use_count(), 2u);
  moved = IntervalOutput{};
  EXPECT_EQ(key.use_count(), 1u);
}

TEST(Rollup, SameStatNameComparesAddressesThenText) {
  const std::string_view count = stat_name("count");
  EXPECT_TRUE(same_stat_name(count, count));
  const std::string other = "count";
  EXPECT_TRUE(same_stat_name(count, other));  // another address, same text
  EXPECT_FALSE(same_stat_name(count, "counts"));
  EXPECT_FALSE(same_stat_name(count, count.substr(0, 4)));  // same address, shorter
}

// A Stat keeps a view of its name: stat() interns it, so the caller's string may go.
TEST(Rollup, AStatsNameOutlivesTheStringItWasGivenAs) {
  IntervalOutput out;
  out.add(make_series_key(Level::App, "a", "", -1, "m", {}), SeriesKind::Distribution);
  {
    std::string name = "p99";
    name += "_max";  // built at run time
    out.stat(name, 1.5);
    std::fill(name.begin(), name.end(), 'x');  // its bytes change where they are
  }
  ASSERT_EQ(out.stats.size(), 1u);
  EXPECT_EQ(out.stats[0].name, "p99_max");
  EXPECT_EQ(stat_name(std::string("p99_max")).data(), out.stats[0].name.data());  // one copy
}

TEST(Rollup, NearestRank) {
  std::vector<double> v = {1, 2, 3, 4};
  EXPECT_EQ(nearest_rank(v, 0.5), 2);
  EXPECT_EQ(nearest_rank(v, 0.51), 3);
  EXPECT_EQ(nearest_rank(v, 0), 1);
  EXPECT_EQ(nearest_rank(v, 1), 4);
}

TEST(Rollup, BucketQuantileLikeHistogramQuantile) {
  std::vector<std::pair<double, double>> b = {{0.1, 5}, {0.5, 5}, {INFINITY, 10}};
  EXPECT_DOUBLE_EQ(bucket_quantile(b, 0.25), 0.1);              // end of the first bucket
  EXPECT_DOUBLE_EQ(bucket_quantile(b, 0.375), 0.1 + 0.4 * 0.5);  // halfway into (0.1, 0.5]
  EXPECT_DOUBLE_EQ(bucket_quantile(b, 0.9), 0.5);               // +Inf bucket: last finite bound
}

double stat(const StatValues& v, const std::string& name) {
  for (const auto& [n, x] : v)
    if (n == name) return x;
  return std::nan("");
}

// One metric name reported in two forms (a client-library migration: a v2 sketch in one
// process, a prometheus_client histogram in another): count and sum cover every observation of
// the interval; the quantiles come from the form that holds most of them.
TEST(Rollup, MixedFormsCountEveryObservation) {
  Distribution sketch;
  sketch.form = Distribution::Form::Sketch;
  for (int i = 0; i < 100; ++i) sketch.sketch.add(0.01);
  Distribution buckets;
  buckets.form = Distribution::Form::Buckets;
  buckets.bucket_upper_bounds = {0.1, 1, INFINITY};
  buckets.bucket_counts = {0, 300, 0};
  buckets.count = 300;
  buckets.sum = 150;
  Distribution summary;
  summary.form = Distribution::Form::Summary;
  summary.count = 10;
  summary.sum = 5;
  for (auto order : {std::vector<const Distribution*>{&sketch, &buckets, &summary},
                     std::vector<const Distribution*>{&summary, &buckets, &sketch}}) {
    StatValues out;
    distribution_stats(order, out);
    EXPECT_EQ(stat(out, "count"), 410);
    EXPECT_NEAR(stat(out, "sum"), 1.0 + 150 + 5, 0.01);
    EXPECT_NEAR(stat(out, "mean"), 156.0 / 410, 0.001);
    EXPECT_GT(stat(out, "p50"), 0.1);  // the histogram's (0.1, 1] holds most of the interval
    EXPECT_LE(stat(out, "p50"), 1.0);
  }
}

// A delta whose sum is unknown (a prometheus_client _sum gone NaN, a Scales PMF) makes the
// group's sum unknown: count and quantiles are emitted, sum and mean are not.
TEST(Rollup, AnUnknownSumEmitsCountAndQuantilesButNoSumOrMean) {
  auto has = [](const StatValues& v, const std::string& name) {
    for (const auto& [n, x] : v)
      if (n == name) return true;
    return false;
  };
  auto value = [](const StatValues& v, const std::string& name) {
    for (const auto& [n, x] : v)
      if (n == name) return x;
    return std::nan("");
  };
  Distribution known, unknown;
  known.form = unknown.form = Distribution::Form::Buckets;
  known.bucket_upper_bounds = unknown.bucket_upper_bounds = {0.01, 0.1, INFINITY};
  known.bucket_counts = {100, 0, 0};
  known.count = 100;
  known.sum = 0.5;
  unknown.bucket_counts = {0, 300, 0};
  unknown.count = 300;
  unknown.sum_unknown = true;
  StatValues out;
  distribution_stats({&known}, out);
  EXPECT_TRUE(has(out, "sum"));
  EXPECT_TRUE(has(out, "mean"));
  out.clear();
  distribution_stats({&known, &unknown}, out);
  EXPECT_EQ(value(out, "count"), 400);
  EXPECT_GT(value(out, "p50"), 0.01);
  EXPECT_FALSE(has(out, "sum"));
  EXPECT_FALSE(has(out, "mean"));

  Distribution pmf;  // a Scales PMF: its quantiles are its own
  pmf.form = Distribution::Form::Summary;
  pmf.count = 40;
  pmf.sum_unknown = true;
  pmf.min = 0.1;
  pmf.max = 0.9;
  pmf.quantiles = {{0.5, 0.4}};
  out.clear();
  distribution_stats({&pmf}, out);
  EXPECT_EQ(value(out, "count"), 40);
  EXPECT_EQ(value(out, "p50_max"), 0.4);
  EXPECT_EQ(value(out, "min"), 0.1);
  EXPECT_FALSE(has(out, "sum"));
  EXPECT_FALSE(has(out, "mean"));
}

}  // namespace
}  // namespace statherd::server
