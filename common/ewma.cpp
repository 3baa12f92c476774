// Dropwizard Metrics / Scales meter EWMA (see ewma.h for the definition).
#include "common/ewma.h"

#include <cmath>

namespace statherd {

Ewma::Ewma(double minutes, double tick_seconds)
    : alpha_(1.0 - std::exp(-tick_seconds / (60.0 * minutes))), tick_seconds_(tick_seconds) {}

void Ewma::tick(double events) {
  const double instant_rate = events / tick_seconds_;
  if (initialized_) {
    rate_ += alpha_ * (instant_rate - rate_);
  } else {
    rate_ = instant_rate;
    initialized_ = true;
  }
}

}  // namespace statherd
