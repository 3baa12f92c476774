#include "agent/delivery.h"

#include <algorithm>

#include "common/log.h"

namespace statherd::agent {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds cap, uint64_t seed)
    : initial_(initial), cap_(cap), rng_(seed) {}

std::chrono::milliseconds Backoff::next() {
  int64_t d = initial_.count();
  for (int i = 0; i < attempt_ && d < cap_.count(); ++i) d *= 2;
  d = std::min<int64_t>(d, cap_.count());
  ++attempt_;
  std::uniform_int_distribution<int64_t> jitter(d / 2, std::max<int64_t>(d / 2, d));
  return std::chrono::milliseconds(jitter(rng_));
}

SpoolDelivery::SpoolDelivery(Spool& spool, BatchSender& sender, Backoff backoff, Clock clock)
    : spool_(spool), sender_(sender), backoff_(std::move(backoff)), clock_(std::move(clock)) {}

void SpoolDelivery::on_failure(uint64_t seq, const ShipResult& r) {
  ++stats_.failed_attempts;
  auto delay = backoff_.next();
  next_attempt_ = clock_() + delay;
  std::string what = "could not ship batch seq " + std::to_string(seq) + ": " +
                     (r.http_status ? "HTTP " + std::to_string(r.http_status) + " " : "") +
                     r.detail + "; kept in the spool (" + std::to_string(spool_.count()) +
                     " batches), retry in " + std::to_string(delay.count()) + " ms";
  if (r.outcome == ShipOutcome::Unauthorized) {
    log::error(what + "\nhint: the server refused the agent's token; check that --token-file "
                      "holds the same token as the server's token file");
  } else {
    log::warn(what + "\nhint: is statherd-server running and reachable at the --server URL?");
  }
}

bool SpoolDelivery::drain(SteadyClock::time_point deadline, bool ignore_backoff) {
  if (!ignore_backoff && backing_off()) return spool_.count() == 0;
  for (uint64_t seq : spool_.pending()) {
    if (clock_() >= deadline) break;
    auto body = spool_.read(seq);
    if (!body) {
      log::error(body.error().to_string() + "\n(dropping that batch)");
      ++stats_.unreadable;
      spool_.remove(seq);
      continue;
    }
    ShipResult r = sender_.send(seq, *body);
    if (r.outcome == ShipOutcome::Acked) {
      ++stats_.acked;
      spool_.remove(seq);
      backoff_.reset();
      next_attempt_ = {};
    } else if (r.outcome == ShipOutcome::Rejected) {
      ++stats_.rejected;
      spool_.remove(seq);
      log::error("server rejected batch seq " + std::to_string(seq) + " permanently (HTTP " +
                 std::to_string(r.http_status) + "): " + r.detail +
                 "; dropped it\nhint: agent and server versions may disagree on the batch format");
    } else {
      on_failure(seq, r);
      break;
    }
  }
  return spool_.count() == 0;
}

}  // namespace statherd::agent
