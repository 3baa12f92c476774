// distribution_delta on its own: which steps down are resets and which are float noise.
#include <gtest/gtest.h>

#include "server/dist_delta.h"

namespace statherd::server {
namespace {

Distribution summary(double count, double sum) {
  Distribution d;
  d.form = Distribution::Form::Summary;
  d.count = count;
  d.sum = sum;
  return d;
}

Distribution buckets(std::vector<double> counts) {
  Distribution d;
  d.form = Distribution::Form::Buckets;
  d.bucket_upper_bounds = {0.1, 1, 10};
  d.bucket_counts = counts;
  for (double c : counts) d.count += c;
  return d;
}

// A writer that sums parts (a Prometheus summary's _count as a float) can step down by a few
// ulps: that is no observation at all, not a restart that would count the whole life again.
TEST(DistDelta, AFloatNoiseStepDownIsNoObservationNotAReset) {
  auto d = distribution_delta(summary(1000, 50), summary(999.9999999, 50));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->count, 0);
  auto b = distribution_delta(buckets({10, 1000, 0}), buckets({10, 999.9999999, 0}));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->bucket_counts[1], 0);
  EXPECT_EQ(b->count, 0);
}

TEST(DistDelta, ARealStepDownIsAReset) {
  EXPECT_FALSE(distribution_delta(summary(1000, 50), summary(990, 49)).has_value());
  EXPECT_FALSE(distribution_delta(buckets({10, 1000, 0}), buckets({10, 999, 0})).has_value());
  auto d = distribution_delta(summary(1000, 50), summary(1010, 51));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->count, 10);
}

Distribution with_bounds(std::vector<double> bounds, std::vector<double> counts) {
  Distribution d;
  d.form = Distribution::Form::Buckets;
  d.bucket_upper_bounds = std::move(bounds);
  d.bucket_counts = std::move(counts);
  for (double c : d.bucket_counts) d.count += c;
  d.sum = d.count;  // whatever: the delta's sum is the difference
  return d;
}

// A prometheus_client directory whose files disagree on the bounds (a rolling deploy adds one):
// the agent's view is the union, grown by the new bound. What was there before is still there,
// bucket by bucket: the interval gets the difference over the union, not the whole life again.
TEST(DistDelta, BoundsThatGrowSubtractOverTheUnion) {
  Distribution prev = with_bounds({0.001, 0.01, 0.1, 1}, {100, 4000, 800, 100});
  Distribution cur = with_bounds({0.001, 0.01, 0.1, 0.25, 1}, {101, 4003, 802, 3, 101});
  auto d = distribution_delta(prev, cur);
  ASSERT_TRUE(d.has_value()) << "a new bound is not a reset";
  EXPECT_EQ(d->bucket_upper_bounds, cur.bucket_upper_bounds);
  EXPECT_EQ(d->bucket_counts, (std::vector<double>{1, 3, 2, 3, 1}));
  EXPECT_EQ(d->count, 10);
  EXPECT_EQ(d->sum, 10);
}

TEST(DistDelta, BoundsThatChangeOtherwiseAreANewHistogram) {
  Distribution prev = with_bounds({0.001, 0.01, 0.1, 1}, {100, 4000, 800, 100});
  // A bound gone: those observations cannot be placed; a reset (the new state counts whole).
  EXPECT_FALSE(distribution_delta(prev, with_bounds({0.001, 0.1, 1}, {100, 4800, 101})));
  // The union grew, but a shared bucket went down: a restart.
  EXPECT_FALSE(distribution_delta(prev, with_bounds({0.001, 0.01, 0.1, 0.25, 1},
                                                    {100, 10, 800, 3, 100})));
}

// An unknown sum on either side makes the interval's sum unknown (never cur.sum - 0, never a
// negative difference); the count still subtracts. A merge with an unknown sum has one.
TEST(DistDelta, AnUnknownSumOnEitherSideIsUnknownAndMergesUnknown) {
  Distribution prev = buckets({10, 5, 0}), cur = buckets({10, 25, 1});
  prev.sum = 1;
  cur.sum_unknown = true;
  auto d = distribution_delta(prev, cur);
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->sum_unknown);
  EXPECT_EQ(d->count, 21);
  EXPECT_EQ(d->bucket_counts, (std::vector<double>{0, 20, 1}));
  auto back = distribution_delta(cur, prev.count < cur.count ? buckets({10, 30, 1}) : prev);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->sum_unknown);  // the previous state's sum was unknown
  Distribution s0 = summary(100, 10), s1 = summary(140, 0);
  s1.sum_unknown = true;
  auto sd = distribution_delta(s0, s1);
  ASSERT_TRUE(sd.has_value());
  EXPECT_TRUE(sd->sum_unknown);
  EXPECT_EQ(sd->count, 40);
  Distribution into = summary(5, 2);
  merge_delta(into, *sd);
  EXPECT_TRUE(into.sum_unknown);
  EXPECT_EQ(into.count, 45);
  Distribution bin = buckets({1, 1, 0});
  bin.sum = 3;
  merge_delta(bin, *d);
  EXPECT_TRUE(bin.sum_unknown);
  EXPECT_EQ(bin.count, 23);
}

}  // namespace
}  // namespace statherd::server
