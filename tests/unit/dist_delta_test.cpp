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

}  // namespace
}  // namespace statherd::server
