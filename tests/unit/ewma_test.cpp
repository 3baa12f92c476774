// Ewma / Meter against the Dropwizard definition, computed independently here:
// alpha = 1 - exp(-tick / (60 * minutes)); first tick = instant rate; then
// rate += alpha * (instant - rate).
#include "common/ewma.h"

#include <gtest/gtest.h>

#include <cmath>

namespace statherd {
namespace {

double alpha_for(double minutes, double tick_seconds) {
  return 1.0 - std::exp(-tick_seconds / (60.0 * minutes));
}

TEST(Ewma, StartsUninitializedAtZero) {
  Ewma e(1, 5);
  EXPECT_FALSE(e.initialized());
  EXPECT_EQ(e.rate(), 0);
}

TEST(Ewma, FirstTickIsTheInstantRate) {
  Ewma e(1, 5);
  e.tick(50);
  EXPECT_TRUE(e.initialized());
  EXPECT_DOUBLE_EQ(e.rate(), 10.0);  // 50 events / 5 s
}

TEST(Ewma, ConstantRateStaysAtThatRate) {
  Meter m(10);
  for (int i = 0; i < 1000; ++i) m.tick(70);  // 7 events per second
  EXPECT_NEAR(m.m1.rate(), 7.0, 1e-12);
  EXPECT_NEAR(m.m5.rate(), 7.0, 1e-12);
  EXPECT_NEAR(m.m15.rate(), 7.0, 1e-12);
}

TEST(Ewma, StepChangeFollowsClosedForm) {
  const double tick = 10, r_old = 100, r_new = 20;
  for (double minutes : {1.0, 5.0, 15.0}) {
    Ewma e(minutes, tick);
    e.tick(r_old * tick);  // first tick: exactly r_old
    const double a = alpha_for(minutes, tick);
    for (int n = 1; n <= 60; ++n) {
      e.tick(r_new * tick);
      const double expected = r_new + (r_old - r_new) * std::pow(1 - a, n);
      ASSERT_NEAR(e.rate(), expected, 1e-9 * r_old) << "minutes=" << minutes << " n=" << n;
    }
  }
}

TEST(Ewma, ConvergesToNewRateAfterStep) {
  Ewma m1(1, 5);
  m1.tick(0);
  for (int i = 0; i < 12 * 30; ++i) m1.tick(25);  // 30 minutes at 5/s
  EXPECT_NEAR(m1.rate(), 5.0, 1e-9);
}

TEST(Ewma, TickSecondsIsHonoured) {
  // The same events per second ticked every 1 s or every 60 s gives the same instant rate, and
  // after one minute of a step the 1-minute rate has moved by 1 - 1/e whatever the tick.
  for (double tick : {1.0, 5.0, 60.0}) {
    Ewma e(1, tick);
    e.tick(0);
    EXPECT_EQ(e.rate(), 0);
    const int ticks_per_minute = static_cast<int>(60 / tick);
    for (int i = 0; i < ticks_per_minute; ++i) e.tick(3 * tick);  // 3 events/s
    EXPECT_NEAR(e.rate(), 3.0 * (1 - std::exp(-1.0)), 1e-9) << "tick=" << tick;
  }
}

TEST(Ewma, MatchesDropwizardReferenceForOneMinute) {
  // Dropwizard's EWMATest: oneMinuteEWMA with a 5 s tick, update(3) then tick() -> 0.6/s; after
  // one more minute with no events: 0.6 * exp(-1) = 0.22072766.
  Ewma e(1, 5);
  e.tick(3);
  EXPECT_NEAR(e.rate(), 0.6, 1e-12);
  for (int i = 0; i < 12; ++i) e.tick(0);
  EXPECT_NEAR(e.rate(), 0.22072766, 1e-6);
}

TEST(Ewma, RestoreContinuesFromSavedState) {
  Ewma a(5, 10), b(5, 10);
  a.tick(100);
  a.tick(300);
  b.restore(a.rate(), a.initialized());
  a.tick(50);
  b.tick(50);
  EXPECT_DOUBLE_EQ(a.rate(), b.rate());
}

TEST(Ewma, NonFiniteTicksAreSkippedAndNeverPoisonTheRate) {
  for (double bad : {std::nan(""), HUGE_VAL, -HUGE_VAL}) {
    Ewma e(1, 5);
    e.tick(bad);  // before the first tick: stays uninitialized
    EXPECT_FALSE(e.initialized());
    e.tick(50);
    e.tick(bad);
    EXPECT_DOUBLE_EQ(e.rate(), 10.0);
    e.tick(100);  // and later ticks still move it
    EXPECT_DOUBLE_EQ(e.rate(), 10.0 + alpha_for(1, 5) * (20.0 - 10.0));
    EXPECT_TRUE(std::isfinite(e.rate()));
  }
}

TEST(Ewma, RestoringANonFiniteRateStartsOver) {
  Ewma e(5, 10);
  e.restore(std::nan(""), true);
  EXPECT_FALSE(e.initialized());
  e.tick(30);
  EXPECT_DOUBLE_EQ(e.rate(), 3.0);
}

}  // namespace
}  // namespace statherd
