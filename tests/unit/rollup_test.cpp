#include "server/rollup.h"

#include <gtest/gtest.h>

#include <cmath>

namespace statherd::server {
namespace {

TEST(Rollup, QuantileNames) {
  EXPECT_EQ(quantile_stat_name(0.5), "p50");
  EXPECT_EQ(quantile_stat_name(0.99), "p99");
  EXPECT_EQ(quantile_stat_name(0.999), "p999");
  EXPECT_EQ(quantile_stat_name(0.9999), "p9999");
  EXPECT_EQ(quantile_stat_name(0.75), "p75");
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

}  // namespace
}  // namespace statherd::server
