#include "server/connection_limits.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace statherd::server {
namespace {

TEST(ConnectionCap, FitsTheDescriptorLimitWithAReserve) {
  std::string why;
  EXPECT_EQ(fit_connection_cap(1024, 65536, 12, why), 1024u);
  EXPECT_TRUE(why.empty());
  EXPECT_EQ(fit_connection_cap(1024, 1024, 12, why), 1024u - 12 - 32);
  EXPECT_NE(why.find("lowered to 980"), std::string::npos) << why;
  EXPECT_NE(why.find("LimitNOFILE"), std::string::npos) << why;
  EXPECT_EQ(fit_connection_cap(1024, 40, 12, why), 1u);  // never 0: the server stays usable
}

TEST(RateLimitedLine, OneLinePerPeriodThenSaysHowManyWereSuppressed) {
  RateLimitedLine line(std::chrono::seconds(10));
  auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  EXPECT_EQ(line.take("accept failed", t0), "accept failed");
  for (int i = 1; i <= 1000; ++i) {
    EXPECT_FALSE(line.take("accept failed", t0 + std::chrono::milliseconds(i)));
  }
  EXPECT_EQ(line.take("accept failed", t0 + std::chrono::seconds(10)),
            "accept failed (1000 more since the last such line)");
}

TEST(AcceptBackoff, BacksOffOnDescriptorExhaustionAndNeverRetriesAtOnce) {
  AcceptBackoff backoff;
  EXPECT_EQ(backoff.on_error(EMFILE).count(), 10);
  EXPECT_EQ(backoff.on_error(EMFILE).count(), 20);
  EXPECT_EQ(backoff.on_error(ENFILE).count(), 40);
  for (int i = 0; i < 20; ++i) backoff.on_error(EMFILE);
  EXPECT_EQ(backoff.on_error(EMFILE).count(), 1000);
  backoff.on_success();
  EXPECT_EQ(backoff.on_error(EMFILE).count(), 10);
  EXPECT_EQ(backoff.on_error(ECONNABORTED).count(), 10);
}

TEST(IdleConnections, TheLongestIdleIsTakenFirstAndBusyOnesNever) {
  IdleConnections<int> idle;
  EXPECT_EQ(idle.take_longest_idle(), std::nullopt);
  idle.mark_idle(1);
  idle.mark_idle(2);
  idle.mark_idle(3);
  idle.mark_busy(1);  // started a request: not a candidate
  idle.mark_idle(2);  // idle again after a keep-alive answer: now the most recent
  EXPECT_FALSE(idle.contains(1));
  EXPECT_EQ(idle.size(), 2u);
  EXPECT_EQ(idle.take_longest_idle(), 3);
  EXPECT_EQ(idle.take_longest_idle(), 2);
  EXPECT_EQ(idle.take_longest_idle(), std::nullopt);
  idle.mark_busy(7);  // never idle: nothing to do
  EXPECT_EQ(idle.size(), 0u);
}

}  // namespace
}  // namespace statherd::server
