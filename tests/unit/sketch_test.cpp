// Sketch: accuracy against exact order statistics on 1M values of three distributions, the
// merge property, negatives/zeros, collapse, and assign() validation.
#include "common/sketch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

namespace statherd {
namespace {

constexpr size_t kValues = 1'000'000;
constexpr double kAlpha = Sketch::kDefaultAlpha;
// Room for the last bit of rounding in ceil(log(x)/ln(gamma)) at a bucket boundary.
constexpr double kTolerance = kAlpha * (1 + 1e-9);
const double kQuantiles[] = {0.5, 0.75, 0.9, 0.95, 0.99, 0.999};

std::vector<double> generate(const std::function<double(std::mt19937_64&)>& draw, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> values(kValues);
  for (auto& v : values) v = draw(rng);
  return values;
}

// Relative distance of `estimate` from the exact order statistic(s) at rank q*(n-1): zero when
// it lies between the two neighbouring order statistics.
double relative_error(const std::vector<double>& sorted, double q, double estimate) {
  const double rank = q * static_cast<double>(sorted.size() - 1);
  const double lo = sorted[static_cast<size_t>(std::floor(rank))];
  const double hi = sorted[static_cast<size_t>(std::ceil(rank))];
  if (estimate >= lo && estimate <= hi) return 0;
  const double nearest = estimate < lo ? lo : hi;
  return std::fabs(estimate - nearest) / std::fabs(nearest);
}

double max_error_over_quantiles(std::vector<double> values, const char* name) {
  Sketch sketch;
  for (double v : values) sketch.add(v);
  std::sort(values.begin(), values.end());
  EXPECT_EQ(sketch.count(), static_cast<double>(values.size()));
  EXPECT_EQ(sketch.min(), values.front());
  EXPECT_EQ(sketch.max(), values.back());
  double worst = 0;
  for (double q : kQuantiles) {
    const double err = relative_error(values, q, sketch.quantile(q));
    EXPECT_LE(err, kTolerance) << name << " q=" << q << " estimate=" << sketch.quantile(q);
    worst = std::max(worst, err);
  }
  std::printf("[ accuracy ] %-12s max relative error over p50..p999: %.5f%% (bound %.2f%%)\n", name,
              worst * 100, kAlpha * 100);
  return worst;
}

TEST(Sketch, UniformQuantilesWithinAlphaOfExact) {
  std::uniform_real_distribution<double> d(0.001, 1000.0);
  max_error_over_quantiles(generate([&](auto& r) { return d(r); }, 1), "uniform");
}

TEST(Sketch, LognormalQuantilesWithinAlphaOfExact) {
  std::lognormal_distribution<double> d(0.0, 2.0);
  max_error_over_quantiles(generate([&](auto& r) { return d(r); }, 2), "lognormal");
}

TEST(Sketch, ParetoQuantilesWithinAlphaOfExact) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  // Pareto, x_m = 1, shape 1.16 (the "80/20" tail): x = x_m / U^(1/shape).
  auto pareto = [&](auto& r) { return 1.0 / std::pow(1.0 - u(r), 1.0 / 1.16); };
  max_error_over_quantiles(generate(pareto, 3), "pareto");
}

TEST(Sketch, BimodalQuantilesWithinAlphaOfExact) {
  std::normal_distribution<double> fast(5.0, 0.5), slow(300.0, 40.0);
  std::bernoulli_distribution pick_slow(0.05);
  auto bimodal = [&](auto& r) { return std::max(1e-3, pick_slow(r) ? slow(r) : fast(r)); };
  max_error_over_quantiles(generate(bimodal, 4), "bimodal");
}

TEST(Sketch, EveryValueIsWithinAlphaOfItsRepresentative) {
  Sketch s;
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> exponent(-9, 300);
  for (int i = 0; i < 100000; ++i) {
    const double x = std::pow(10.0, exponent(rng));
    const double rep = s.value_of(s.index_of(x));
    ASSERT_LE(std::fabs(rep - x) / x, kTolerance) << x;
  }
}

TEST(Sketch, MergeEqualsSketchOfUnionBucketForBucket) {
  std::mt19937_64 rng(6);
  std::lognormal_distribution<double> d(1.0, 1.5);
  Sketch a, b, all;
  for (int i = 0; i < 200000; ++i) {
    // Integer-valued data keeps the sums exact whatever the order of addition.
    const double v = std::round(d(rng) * 100) * (i % 7 == 0 ? -1 : 1);
    (i % 3 == 0 ? a : b).add(v);
    all.add(v);
  }
  Sketch merged = a;
  ASSERT_TRUE(merged.merge(b));
  EXPECT_EQ(merged.positive(), all.positive());
  EXPECT_EQ(merged.negative(), all.negative());
  EXPECT_EQ(merged.zero_count(), all.zero_count());
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.sum(), all.sum());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_TRUE(merged == all);
}

TEST(Sketch, MergingManySmallSketchesGivesTheSameQuantiles) {
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> d(0.01);
  Sketch all, merged;
  for (int part = 0; part < 2000; ++part) {
    Sketch small;
    for (int i = 0; i < 50; ++i) {
      const double v = d(rng);
      small.add(v);
      all.add(v);
    }
    ASSERT_TRUE(merged.merge(small));
  }
  EXPECT_EQ(merged.positive(), all.positive());
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_NEAR(merged.sum(), all.sum(), 1e-9 * all.sum());
  for (double q : kQuantiles) EXPECT_EQ(merged.quantile(q), all.quantile(q)) << q;
}

TEST(Sketch, MergeRejectsDifferentAlpha) {
  Sketch a(0.01), b(0.02);
  b.add(1);
  EXPECT_FALSE(a.merge(b));
  EXPECT_TRUE(a.empty());
}

TEST(Sketch, NegativesAndZerosKeepTheirOrder) {
  Sketch s;
  for (int i = 1; i <= 100; ++i) s.add(-i);  // -100..-1
  s.add(0, 100);                             // 100 zeros
  s.add(1e-12);                              // below kMinPositive: a zero
  for (int i = 1; i <= 99; ++i) s.add(i);    // 1..99
  EXPECT_EQ(s.count(), 300);
  EXPECT_EQ(s.zero_count(), 101);
  EXPECT_EQ(s.min(), -100);
  EXPECT_EQ(s.max(), 99);
  EXPECT_EQ(s.quantile(0), -100);
  EXPECT_EQ(s.quantile(1), 99);
  // Sorted: ranks 0..99 = -100..-1, 100..200 = zeros, 201..299 = 1..99. rank = q * 299:
  // 0.1 -> 29.9 (rank 29 = -71); 0.5 -> 149.5 (a zero); 0.9 -> 269.1 (rank 269 = 69).
  EXPECT_NEAR(s.quantile(0.1), -71, 71 * kTolerance);
  EXPECT_EQ(s.quantile(0.5), 0);
  EXPECT_NEAR(s.quantile(0.9), 69, 69 * kTolerance);
  EXPECT_NEAR(s.sum(), -100 * 101 / 2 + 99 * 100 / 2 + 1e-12, 1e-9);
}

TEST(Sketch, EmptyAndIgnoredValues) {
  Sketch s;
  EXPECT_TRUE(std::isnan(s.quantile(0.5)));
  s.add(std::nan(""));
  s.add(INFINITY);
  s.add(5, 0);
  s.add(5, -1);
  EXPECT_TRUE(s.empty());
  s.add(42);
  EXPECT_EQ(s.quantile(0.5), 42);  // clamped to [min, max]
  EXPECT_TRUE(std::isnan(s.quantile(std::nan(""))));
  s.clear();
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s, Sketch());
}

TEST(Sketch, CollapseKeepsCountAndHighQuantiles) {
  Sketch s(0.01, 64);
  for (int i = 0; i < 10000; ++i) s.add(std::pow(1.05, i % 500));  // spans ~245 buckets
  EXPECT_EQ(s.count(), 10000);
  EXPECT_LE(s.positive().counts.size(), 64u);
  double total = 0;
  for (double c : s.positive().counts) total += c;
  EXPECT_EQ(total, 10000);
  const double exact_p99 = std::pow(1.05, 494);  // rank 9899 -> i % 500 == 494 (sorted by value)
  EXPECT_NEAR(s.quantile(0.99) / exact_p99, 1.0, kTolerance);
  // Values added in the opposite order, or merged, collapse to the same buckets.
  Sketch reversed(0.01, 64), merged(0.01, 64);
  for (int i = 9999; i >= 0; --i) reversed.add(std::pow(1.05, i % 500));
  for (int part = 0; part < 10; ++part) {
    Sketch p(0.01, 64);
    for (int i = part * 1000; i < (part + 1) * 1000; ++i) p.add(std::pow(1.05, i % 500));
    merged.merge(p);
  }
  EXPECT_EQ(reversed.positive(), s.positive());
  EXPECT_EQ(merged.positive(), s.positive());
}

TEST(Sketch, AssignRoundTripsAValidSketch) {
  Sketch s;
  for (double v : {-3.0, 0.0, 1.0, 2.5, 1000.0}) s.add(v);
  Sketch copy;
  ASSERT_TRUE(copy.assign(s.alpha(), s.positive(), s.negative(), s.zero_count(), s.count(), s.sum(),
                          s.min(), s.max()));
  EXPECT_EQ(copy, s);
}

TEST(Sketch, AssignRejectsInconsistentParts) {
  Sketch::Store pos{10, {1, 2, 3}};
  Sketch::Store none;
  Sketch s;
  s.add(7);
  const Sketch before = s;
  EXPECT_FALSE(s.assign(0.01, pos, none, 0, 5, 10, 1, 2));                // count 5 != 6 buckets
  EXPECT_FALSE(s.assign(0.01, {10, {1, -1, 6}}, none, 0, 6, 10, 1, 2));   // negative count
  EXPECT_FALSE(s.assign(0.01, {10, {1, NAN, 3}}, none, 0, 6, 10, 1, 2));  // NaN count
  EXPECT_FALSE(s.assign(0.01, pos, none, -1, 5, 10, 1, 2));               // negative zero count
  EXPECT_FALSE(s.assign(0.01, pos, none, 0, 6, INFINITY, 1, 2));          // non-finite sum
  EXPECT_FALSE(s.assign(0.01, pos, none, 0, 6, 10, 3, 2));                // min > max
  EXPECT_FALSE(s.assign(0.0, pos, none, 0, 6, 10, 1, 2));                 // alpha out of range
  EXPECT_FALSE(s.assign(NAN, pos, none, 0, 6, 10, 1, 2));
  EXPECT_FALSE(s.assign(0.01, {10, std::vector<double>(5000, 1)}, none, 0, 5000, 10, 1, 2));
  EXPECT_FALSE(s.assign(0.01, {INT32_MAX - 1, {1, 1, 1}}, none, 0, 3, 10, 1, 2));  // overflow
  EXPECT_FALSE(s.assign(0.01, {-5000, {1}}, none, 0, 1, 1, 1, 1));  // below kMinPositive
  EXPECT_EQ(s, before);  // a rejected assign leaves the sketch unchanged
  EXPECT_TRUE(s.assign(0.01, pos, none, 0, 6, 10, 1, 2));
  EXPECT_EQ(s.count(), 6);
}

TEST(Sketch, AssignTrimsZeroPadding) {
  Sketch a, b;
  ASSERT_TRUE(a.assign(0.01, {10, {0, 0, 2, 0}}, {}, 0, 2, 3, 1.2, 1.3));
  ASSERT_TRUE(b.assign(0.01, {12, {2}}, {}, 0, 2, 3, 1.2, 1.3));
  EXPECT_EQ(a, b);
}


TEST(Sketch, SubtractGivesTheSketchOfTheNewValuesBucketForBucket) {
  Sketch before, after, only_new;
  for (int i = 1; i <= 300; ++i) before.add(i * 0.001);
  after = before;
  for (int i = 1; i <= 50; ++i) { after.add(i * 2.0); only_new.add(i * 2.0); }
  after.add(0);
  only_new.add(0);
  after.add(-3);
  only_new.add(-3);
  Sketch diff = after;
  ASSERT_TRUE(diff.subtract(before));
  EXPECT_EQ(diff.positive(), only_new.positive());
  EXPECT_EQ(diff.negative(), only_new.negative());
  EXPECT_EQ(diff.zero_count(), 1.0);
  EXPECT_EQ(diff.count(), 52.0);
  EXPECT_NEAR(diff.sum(), only_new.sum(), 1e-9);
  // min/max: the lowest/highest non-empty buckets, within alpha.
  EXPECT_NEAR(diff.min(), -3, 3 * kTolerance);
  EXPECT_NEAR(diff.max(), 100, 100 * kTolerance);
  for (double q : {0.25, 0.5, 0.9}) EXPECT_EQ(diff.quantile(q), only_new.quantile(q)) << q;
}

TEST(Sketch, SubtractRefusesAnOlderStateThatIsNotAPrefix) {
  Sketch a, b;
  a.add(1);
  a.add(2);
  b.add(1);
  b.add(5);
  Sketch copy = b;
  EXPECT_FALSE(b.subtract(a));   // bucket of 2 would go negative: a reset
  EXPECT_TRUE(b == copy);        // unchanged
  EXPECT_FALSE(Sketch(0.02).subtract(a));
  Sketch same = a;
  ASSERT_TRUE(same.subtract(a));
  EXPECT_TRUE(same.empty());
}

TEST(Sketch, SubtractFollowsCollapseOfTheLowestBuckets) {
  Sketch before(kAlpha, 8), after(kAlpha, 8);
  for (int i = 0; i < 8; ++i) before.add(std::pow(1.03, i));
  after = before;
  after.add(std::pow(1.03, 12), 5);  // widens the store: the lowest buckets collapse
  Sketch diff = after;
  ASSERT_TRUE(diff.subtract(before));
  EXPECT_EQ(diff.count(), 5.0);
  EXPECT_NEAR(diff.quantile(0.5), std::pow(1.03, 12), std::pow(1.03, 12) * kTolerance);
}

}  // namespace
}  // namespace statherd
