#include "server/sinks/recent_paths.h"

#include <gtest/gtest.h>

#include <string>

namespace statherd::server {
namespace {

using std::chrono::minutes;

TEST(RecentPaths, APathSentOnceIsRememberedForOneToTwoPeriods) {
  const auto t0 = RecentPaths::Clock::time_point{} + std::chrono::hours(100);
  RecentPaths recent(minutes(60), t0);
  EXPECT_FALSE(recent.seen("a.b.count", t0));
  recent.add("a.b.count", t0);
  EXPECT_TRUE(recent.seen("a.b.count", t0 + minutes(59)));   // same generation
  recent.add("a.c.count", t0 + minutes(59));
  // First rotation at 60: both move to the previous generation and are still known; a.b is
  // looked up, so it moves back into the current one.
  EXPECT_TRUE(recent.seen("a.b.count", t0 + minutes(61)));
  // The next rotation (the first call 60 min after the last one): a.c was not sent since the
  // one before, so it is forgotten; a.b stays.
  EXPECT_TRUE(recent.seen("a.b.count", t0 + minutes(125)));
  EXPECT_FALSE(recent.seen("a.c.count", t0 + minutes(125)));
  EXPECT_EQ(recent.size(), 1u);
}

TEST(RecentPaths, AQuietSpellLongerThanTwoPeriodsForgetsEverything) {
  const auto t0 = RecentPaths::Clock::time_point{} + std::chrono::hours(100);
  RecentPaths recent(minutes(60), t0);
  recent.add("x", t0 + minutes(50));
  EXPECT_FALSE(recent.seen("x", t0 + minutes(50) + minutes(130)));
  EXPECT_EQ(recent.size(), 0u);
}

// Churning paths (a fleet whose pids change): memory holds two periods' worth, not every path.
TEST(RecentPaths, ChurnKeepsOnlyTheLastTwoPeriodsPaths) {
  const auto t0 = RecentPaths::Clock::time_point{} + std::chrono::hours(100);
  RecentPaths recent(minutes(60), t0);
  for (int m = 0; m < 24 * 60; ++m)  // a day, 100 new paths a minute
    for (int i = 0; i < 100; ++i)
      recent.add("p" + std::to_string(m) + "." + std::to_string(i), t0 + minutes(m));
  EXPECT_LE(recent.size(), 2u * 60 * 100);
  EXPECT_GE(recent.size(), 60u * 100);
}

}  // namespace
}  // namespace statherd::server
