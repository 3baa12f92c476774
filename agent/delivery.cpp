#include "agent/delivery.h"

#include <algorithm>

#include "agent/delivery_split.h"
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

namespace {

constexpr auto kUnauthorizedRetry = std::chrono::seconds(30);
constexpr auto kUnauthorizedLogEvery = std::chrono::seconds(60);

std::string answer_text(const ShipResult& r) {
  return (r.http_status ? "HTTP " + std::to_string(r.http_status) + " " : "") + r.detail;
}

}  // namespace

void SpoolDelivery::on_failure(uint64_t seq, const ShipResult& r) {
  ++stats_.failed_attempts;
  auto delay = backoff_.next();
  const auto now = clock_();
  std::string what = "could not ship batch seq " + std::to_string(seq) + ": " + answer_text(r) +
                     "; kept in the spool (" + std::to_string(spool_.count()) + " batches), ";
  if (r.outcome != ShipOutcome::Unauthorized) {
    next_attempt_ = now + delay;
    log::warn(what + "retry in " + std::to_string(delay.count()) + " ms\nhint: " +
              (r.http_status == 0
                   ? (unreachable_hint_.empty()
                          ? std::string("is statherd-server running and reachable at the --server URL?")
                          : unreachable_hint_)
                   : "check that --server points at statherd-server (not at a proxy or another "
                     "service that answers for it) and the server's log"));
    return;
  }
  // 401/403: retrying fast cannot help; say so loudly, but once a minute.
  ++stats_.unauthorized;
  const auto slow = std::max<std::chrono::milliseconds>(delay, kUnauthorizedRetry);
  next_attempt_ = now + slow;
  if (last_unauthorized_log_ != SteadyClock::time_point{} &&
      now - last_unauthorized_log_ < kUnauthorizedLogEvery) {
    ++unauthorized_unlogged_;
    return;
  }
  log::error(what + "retry in " + std::to_string(slow.count()) + " ms" +
             (unauthorized_unlogged_ ? " (" + std::to_string(unauthorized_unlogged_) +
                                           " more refusals since the last message)"
                                     : "") +
             "\nhint: the server refused the agent's token; check that --token-file holds the "
             "same token as the server's token file");
  last_unauthorized_log_ = now;
  unauthorized_unlogged_ = 0;
}

void SpoolDelivery::finish(uint64_t seq) {
  parts_done_.erase(seq);
  spool_.remove(seq);
}

bool SpoolDelivery::quarantine_part(uint64_t seq, std::vector<SpoolPart>& parts, size_t i,
                                    const std::string& reason) {
  if (Status st = spool_.quarantine().add(parts[i].seq, parts[i].body, reason); !st) {
    log::error("cannot quarantine batch seq " + std::to_string(parts[i].seq) + ": " +
               st.error().to_string() + "\n(it stays in the spool)");
    return false;
  }
  ++stats_.quarantined;
  parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(i));
  if (parts.empty()) {
    finish(seq);
  } else if (Status st = spool_.replace_parts(seq, parts); !st) {
    log::warn("could not rewrite " + spool_.path_of(seq) + " without its quarantined part: " +
              st.error().to_string() + "\n(the part is quarantined again after a restart)");
  }
  return true;
}

// 413: replaces parts[i] by its two halves, in memory and in the spool (one atomic rename).
bool SpoolDelivery::split(uint64_t seq, std::vector<SpoolPart>& parts, size_t i,
                          const ShipResult& r) {
  auto halves = split_part(parts[i]);
  if (!halves)
    return quarantine_part(seq, parts, i,
                           "too large: " + answer_text(r) + "; " + halves.error().message);
  std::vector<SpoolPart> next(parts.begin(), parts.begin() + static_cast<std::ptrdiff_t>(i));
  next.insert(next.end(), halves->begin(), halves->end());
  next.insert(next.end(), parts.begin() + static_cast<std::ptrdiff_t>(i) + 1, parts.end());
  if (Status st = spool_.replace_parts(seq, next); !st) {
    log::error("cannot store the split of batch seq " + std::to_string(seq) + ": " +
               st.error().to_string());
    return false;
  }
  ++stats_.split_batches;
  if (parts.size() == 1)  // the first split of a batch; its further splits are only counted
    log::info("batch seq " + std::to_string(parts[i].seq) + " (" +
              std::to_string(parts[i].body.size()) + " bytes) was too large (" + answer_text(r) +
              "): split into seqs " + std::to_string((*halves)[0].seq) + " and " +
              std::to_string((*halves)[1].seq) +
              "\nhint: raise the server's limits.max_body_bytes to send whole batches again");
  parts = std::move(next);
  return true;
}

bool SpoolDelivery::deliver(uint64_t seq, std::vector<SpoolPart> parts,
                            SteadyClock::time_point deadline) {
  size_t i = std::min(parts_done_[seq], parts.size());
  while (i < parts.size()) {
    if (clock_() >= deadline) return false;
    if (parts[i].body.size() > max_send_bytes_) {
      ShipResult over{ShipOutcome::TooLarge, 0,
                      "over the agent's max_batch_bytes of " + std::to_string(max_send_bytes_)};
      if (!split(seq, parts, i, over)) {
        on_failure(parts[i].seq, over);
        return false;
      }
      if (parts.empty()) return true;
      continue;
    }
    ShipResult r = sender_.send(parts[i].seq, parts[i].body);
    if (r.outcome == ShipOutcome::Acked) {
      parts_done_[seq] = ++i;
      backoff_.reset();
      next_attempt_ = {};
    } else if (r.outcome == ShipOutcome::Malformed) {
      if (!quarantine_part(seq, parts, i, "the server declared it malformed: " + answer_text(r))) {
        on_failure(parts[i].seq, r);
        return false;
      }
      if (parts.empty()) return true;
    } else if (r.outcome == ShipOutcome::TooLarge) {
      // Halves replace parts[i] (sent next), or parts[i] is quarantined (cannot be split).
      if (!split(seq, parts, i, r)) {
        on_failure(parts[i].seq, r);
        return false;
      }
      if (parts.empty()) return true;
    } else {
      on_failure(parts[i].seq, r);
      return false;
    }
  }
  finish(seq);
  ++stats_.acked;
  if (on_acked_) on_acked_(seq);
  return true;
}

bool SpoolDelivery::send_held(uint64_t seq, std::string_view body,
                              SteadyClock::time_point deadline, bool ignore_backoff) {
  if ((!ignore_backoff && backing_off()) || spool_.count() != 0 || clock_() >= deadline)
    return false;
  ShipResult r = sender_.send(seq, body);
  if (r.outcome != ShipOutcome::Acked) {
    on_failure(seq, r);
    return false;
  }
  backoff_.reset();
  next_attempt_ = {};
  ++stats_.acked;
  if (on_acked_) on_acked_(seq);
  return true;
}

bool SpoolDelivery::drain(SteadyClock::time_point deadline, bool ignore_backoff) {
  if (!ignore_backoff && backing_off()) return spool_.count() == 0;
  for (uint64_t seq : spool_.pending()) {
    if (clock_() >= deadline) break;
    auto parts = spool_.read_parts(seq);
    if (!parts) {
      ++stats_.unreadable;
      ++stats_.quarantined;
      parts_done_.erase(seq);
      (void)spool_.quarantine_file(seq, "unreadable in the spool: " + parts.error().message);
      continue;
    }
    if (!deliver(seq, std::move(*parts), deadline)) break;
  }
  std::erase_if(parts_done_, [&](const auto& kv) { return !spool_.has(kv.first); });
  return spool_.count() == 0;
}

}  // namespace statherd::agent
