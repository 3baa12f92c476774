// /render's from= and until= at the edges of int64: an out-of-range time is an error, never a
// signed overflow (this ran into UBSan before).
#include <gtest/gtest.h>

#include "server/memory_store.h"

namespace statherd::server {
namespace {

TEST(GraphiteTimeRange, HugeRelativeTimesAreErrorsNotOverflows) {
  const int64_t now = 1'764'000'000;
  auto past = parse_graphite_time("-1099511627776y", now);  // 2^40 years: 3.5e19 s
  ASSERT_FALSE(past.ok());
  EXPECT_NE(past.error().message.find("out of range"), std::string::npos) << past.error().message;
  EXPECT_FALSE(parse_graphite_time("+1099511627776years", now).ok());
}

TEST(GraphiteTimeRange, LargeButRepresentableTimesStillParse) {
  const int64_t now = 1'764'000'000;
  EXPECT_EQ(*parse_graphite_time("-1000y", now), now - int64_t{1000} * 365 * 86400);
  EXPECT_EQ(*parse_graphite_time("-1099511627776s", now), now - (int64_t{1} << 40));
  EXPECT_EQ(*parse_graphite_time("+3w", now), now + 21 * 86400);
}

}  // namespace
}  // namespace statherd::server
