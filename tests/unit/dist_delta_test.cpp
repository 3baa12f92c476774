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

}  // namespace
}  // namespace statherd::server
