// Delivery of spooled batches: oldest first, stop at the first failure (so the server sees seqs
// in order), back off exponentially (jittered, capped) after a failure. What each answer does
// to a batch (docs/OPERATIONS.md, "Delivery"): 200 removes it; 413 splits it into halves that
// are sent at once (agent/spool_parts.h); a 400 with the server's verdict moves it to the
// quarantine; 401/403 keep it and retry slowly (at least every 30 s, logged as an error once
// a minute); every other answer or failure keeps it and retries with backoff.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <vector>

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
  uint64_t acked = 0;           // batches acknowledged whole (every part of a split one)
  uint64_t quarantined = 0;     // batches or parts moved to the quarantine
  uint64_t split_batches = 0;   // splits after a 413 (a batch split twice counts 2)
  uint64_t failed_attempts = 0; // retry-later or unauthorized
  uint64_t unauthorized = 0;    // 401/403 answers (also in failed_attempts)
  uint64_t unreadable = 0;      // spool files that could not be read (quarantined)
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

  // Ships a batch the spool could not store (held in memory while its disk is full), only when
  // the spool holds nothing older and no backoff is running (unless `ignore_backoff`). True
  // when acknowledged; any other answer is a failure (backoff): the batch stays held and gets
  // the spool's full treatment (split, quarantine) once it can be stored.
  bool send_held(uint64_t seq, std::string_view body, SteadyClock::time_point deadline,
                 bool ignore_backoff = false);

  // A part larger than this is split before it is sent, as after a 413 (default: no limit).
  // A body far over the server's max_body_bytes never gets its 413 back: the server refuses it
  // from its Content-Length and closes while the agent is still writing (a broken pipe).
  void set_max_send_bytes(size_t bytes) { max_send_bytes_ = bytes; }

  // The hint logged when no answer came (default: about --server).
  void set_unreachable_hint(std::string hint) { unreachable_hint_ = std::move(hint); }

  // Called with the seq of each batch acknowledged whole (all its parts).
  void set_on_acked(std::function<void(uint64_t)> on_acked) { on_acked_ = std::move(on_acked); }

  bool backing_off() const { return clock_() < next_attempt_; }
  SteadyClock::time_point next_attempt() const { return next_attempt_; }
  const DeliveryStats& stats() const { return stats_; }

 private:
  void on_failure(uint64_t seq, const ShipResult& r);
  // Sends seq's remaining parts in order; true when the batch left the queue.
  bool deliver(uint64_t seq, std::vector<SpoolPart> parts, SteadyClock::time_point deadline);
  // Quarantines parts[i] and takes it out of the batch; false if that could not be stored.
  bool quarantine_part(uint64_t seq, std::vector<SpoolPart>& parts, size_t i,
                       const std::string& reason);
  bool split(uint64_t seq, std::vector<SpoolPart>& parts, size_t i, const ShipResult& r);
  void finish(uint64_t seq);

  Spool& spool_;
  BatchSender& sender_;
  Backoff backoff_;
  Clock clock_;
  size_t max_send_bytes_ = SIZE_MAX;
  std::string unreachable_hint_;
  SteadyClock::time_point next_attempt_{};
  SteadyClock::time_point last_unauthorized_log_{};
  uint64_t unauthorized_unlogged_ = 0;
  DeliveryStats stats_;
  std::function<void(uint64_t)> on_acked_;
  std::map<uint64_t, size_t> parts_done_;  // seq -> leading parts acked (split batches)
};

}  // namespace statherd::agent
