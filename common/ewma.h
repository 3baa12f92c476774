// The EWMA meter rate of Dropwizard Metrics / Scales: ticked once per interval with the number
// of events in that interval; alpha = 1 - exp(-tick_seconds / (60 * minutes)).
// The first tick sets the rate to the instant rate (events / tick_seconds); later ticks move it
// by alpha towards the instant rate. Rates are events per second.
#pragma once

namespace statherd {

class Ewma {
 public:
  Ewma(double minutes, double tick_seconds);
  void tick(double events);          // one interval's events; a non-finite count is skipped
  double rate() const { return rate_; }
  bool initialized() const { return initialized_; }
  void restore(double rate, bool initialized);  // a non-finite rate restores as uninitialized

 private:
  double alpha_;
  double tick_seconds_;
  double rate_ = 0;
  bool initialized_ = false;
};

// m1_rate, m5_rate, m15_rate together.
struct Meter {
  explicit Meter(double tick_seconds)
      : m1(1, tick_seconds), m5(5, tick_seconds), m15(15, tick_seconds) {}
  void tick(double events) { m1.tick(events); m5.tick(events); m15.tick(events); }
  Ewma m1, m5, m15;
};

}  // namespace statherd
