// Delivery of spooled batches: oldest first, stop at the first failure (so the server sees seqs
// in order), back off exponentially (jittered, capped) after a failure.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>

#include "agent/shipper.h"
#include "agent/spool.h"

namespace statherd::agent {

using SteadyClock = std::chrono::steady_clock;

// Exponential backoff: initial, 2x, 4x ... up to cap; each delay is drawn from [d/2, d] so a
// fleet of agents restarted together does not hammer the server in step.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds cap, uint64_t seed);
  std::chrono::milliseconds next();
  void reset() { attempt_ = 0; }
  int attempts() const { return attempt_; }

 private:
  std::chrono::milliseconds initial_, cap_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

struct DeliveryStats {
  uint64_t acked = 0;
  uint64_t rejected = 0;        // dropped after a permanent 4xx
  uint64_t failed_attempts = 0; // retry-later or unauthorized
  uint64_t unreadable = 0;      // spool files that could not be read (dropped)
};

class SpoolDelivery {
 public:
  using Clock = std::function<SteadyClock::time_point()>;
  SpoolDelivery(Spool& spool, BatchSender& sender, Backoff backoff,
                Clock clock = [] { return SteadyClock::now(); });

  // Ships spooled batches oldest first until the spool is empty, one fails, or `deadline`
  // passes. While backing off (before next_attempt()) it does nothing unless `ignore_backoff`.
  // Returns true when the spool is empty afterwards.
  bool drain(SteadyClock::time_point deadline, bool ignore_backoff = false);

  bool backing_off() const { return clock_() < next_attempt_; }
  SteadyClock::time_point next_attempt() const { return next_attempt_; }
  const DeliveryStats& stats() const { return stats_; }

 private:
  void on_failure(uint64_t seq, const ShipResult& r);

  Spool& spool_;
  BatchSender& sender_;
  Backoff backoff_;
  Clock clock_;
  SteadyClock::time_point next_attempt_{};
  DeliveryStats stats_;
};

}  // namespace statherd::agent
