#include "common/shortest_number.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <random>
#include <cstring>
#include <string>

namespace statherd {
namespace {

std::string reference(double v) {
  char buf[64];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

std::string fast(double v) {
  char buf[32];
  return std::string(buf, write_shortest(buf, v));
}

// The fast path must write exactly what std::to_chars writes: every whole number around its
// bounds, halves, signed zeros, extremes and random bit patterns.
TEST(ShortestNumber, WritesWhatToCharsWrites) {
  for (int i = -300000; i <= 300000; ++i) ASSERT_EQ(fast(i), reference(i)) << i;
  for (double v : {0.0, -0.0, 0.5, -0.5, 99999.5, -99999.5, 99999.0, 100000.0, -100000.0,
                   1e15, 1e21, 123456789.0, 4294967296.0, -2147483648.0, 2147483648.0,
                   std::numeric_limits<double>::max(), std::numeric_limits<double>::lowest(),
                   std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::min(),
                   std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                   std::numeric_limits<double>::quiet_NaN()})
    EXPECT_EQ(fast(v), reference(v)) << v;
  EXPECT_EQ(fast(-0.0), "-0");
  std::mt19937_64 rng(11);
  for (int i = 0; i < 200000; ++i) {
    uint64_t bits = rng();
    double v;
    static_assert(sizeof v == sizeof bits);
    std::memcpy(&v, &bits, sizeof v);
    ASSERT_EQ(fast(v), reference(v)) << bits;
  }
}

}  // namespace
}  // namespace statherd
