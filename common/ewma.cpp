// Dropwizard Metrics / Scales meter EWMA (see ewma.h for the definition).
#include "common/ewma.h"

#include <cmath>

namespace statherd {

Ewma::Ewma(double minutes, double tick_seconds)
    : alpha_(1.0 - std::exp(-tick_seconds / (60.0 * minutes))), tick_seconds_(tick_seconds) {}

void Ewma::tick(double events) {
  // A NaN or Inf would stick in rate_ for good (every later tick mixes it in): such a tick is
  // skipped, the rate stays what it was. The decoder already refuses non-finite samples; this
  // is the last guard.
  if (!std::isfinite(events)) return;
  const double instant_rate = events / tick_seconds_;
  if (!std::isfinite(instant_rate)) return;
  if (initialized_) {
    rate_ += alpha_ * (instant_rate - rate_);
  } else {
    rate_ = instant_rate;
    initialized_ = true;
  }
}

void Ewma::restore(double rate, bool initialized) {
  // A snapshot from before this guard may hold a poisoned rate: start over instead.
  if (!std::isfinite(rate)) {
    rate_ = 0;
    initialized_ = false;
    return;
  }
  rate_ = rate;
  initialized_ = initialized;
}

}  // namespace statherd
