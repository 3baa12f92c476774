// /render's from= and until= at the edges of int64: an out-of-range time is an error, never a
// signed overflow (this ran into UBSan before).
#include <gtest/gtest.h>

#include "server/graphite_time.h"
#include "server/memory_store.h"
#include "server/time_zone.h"

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

// The expected instants are pytz's (python3-tz, which graphite-web uses): localize() with
// is_dst=False, on Debian's tzdata.
TEST(TimeZoneTest, LocalTimesAsPytzReadsThem) {
  auto paris = TimeZone::named("Europe/Paris");
  ASSERT_TRUE(paris);
  EXPECT_EQ(paris->localize(1782907200), 1782900000);  // 2026-07-01 12:00 CEST (+2)
  EXPECT_EQ(paris->offset_at(1782900000), 7200);
  EXPECT_EQ(paris->offset_at(1767225600), 3600);       // January: CET
  // 2026-10-25 02:30 happens twice: the later one (CET)
  EXPECT_EQ(paris->localize(1792895400), 1792891800);
  // 2026-03-29 02:30 never happens: read with the offset from before the change
  EXPECT_EQ(paris->localize(1774751400), 1774747800);
  // 1800: local mean time +0:09:21, kept in whole minutes as pytz keeps it
  EXPECT_EQ(paris->localize(-5364662400), -5364662940);
  auto kolkata = TimeZone::named("Asia/Kolkata");
  ASSERT_TRUE(kolkata);
  EXPECT_EQ(kolkata->localize(1767225600), 1767205800);  // +5:30
  EXPECT_FALSE(TimeZone::named("Nowhere/City"));
  // as pytz finds names: any case, _plus_/_minus_, links; not right/, posix/, localtime
  ASSERT_TRUE(TimeZone::named("europe/PARIS"));
  EXPECT_EQ(TimeZone::named("europe/PARIS")->offset_at(1782900000), 7200);
  ASSERT_TRUE(TimeZone::named("Etc/GMT_plus_5"));
  EXPECT_EQ(TimeZone::named("Etc/GMT_plus_5")->offset_at(0), -5 * 3600);
  EXPECT_TRUE(TimeZone::named("US/Eastern"));
  for (const char* not_pytz : {"right/Europe/London", "posix/Europe/Paris", "localtime",
                               "posixrules", "zone.tab", "Europe"})
    EXPECT_FALSE(TimeZone::named(not_pytz)) << not_pytz;
  for (const char* hostile : {"../../etc/passwd", "/etc/passwd", "Europe/../UTC", "", "a//b"})
    EXPECT_FALSE(TimeZone::named(hostile)) << hostile;
  EXPECT_FALSE(TimeZone::from_tzif("TZif but not really"));
  EXPECT_EQ(TimeZone().localize(1000), 1000);  // UTC
}

TEST(TimeZoneTest, GraphiteTimesInAZone) {
  auto ny = TimeZone::named("America/New_York");
  ASSERT_TRUE(ny);
  const int64_t now = 1796281200;  // 2026-12-03 05:40 UTC, 00:40 in New York (EST, -5)
  EXPECT_EQ(*parse_graphite_time("midnight", now, *ny), 1796274000);  // 00:00 EST
  EXPECT_EQ(*parse_graphite_time("midnight", now), 1796256000);       // 00:00 UTC
  EXPECT_EQ(*parse_graphite_time("yesterday", now, *ny), 1796274000 - 86400);
  EXPECT_EQ(*parse_graphite_time("12:00_20260701", now, *ny), 1782921600);  // EDT, -4
  EXPECT_EQ(*parse_graphite_time("-1h", now, *ny), now - 3600);     // relative: no zone
  EXPECT_EQ(*parse_graphite_time("1796281200", now, *ny), now);     // unix seconds: no zone
}

}  // namespace
}  // namespace statherd::server
