#include "agent/agent_loop.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <utility>

#include "agent/sample_guard.h"
#include "common/log.h"

namespace statherd::agent {

int64_t next_aligned_tick(int64_t now_ms, int64_t interval_ms) {
  if (interval_ms <= 0) return now_ms;
  return (now_ms / interval_ms + 1) * interval_ms;
}

void StopSignal::request() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

bool StopSignal::requested() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stop_;
}

void StopSignal::request_reload() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    reload_ = true;
  }
  cv_.notify_all();
}

bool StopSignal::take_reload() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(reload_, false);
}

bool StopSignal::wait_until(SteadyClock::time_point until) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_until(lock, until, [this] { return stop_ || reload_; });
}

ScrapeReport scrape_all(const std::vector<std::unique_ptr<Source>>& sources, int64_t now_ms) {
  ScrapeReport report;
  for (const auto& source : sources) {
    try {
      source->scrape(now_ms, report);
    } catch (const std::exception& e) {  // a source must not throw; contain it if one does
      report.errors.push_back({source->describe(), std::string("scrape threw: ") + e.what()});
    }
  }
  return report;
}

AgentLoop::AgentLoop(AgentLoopOptions options, const std::vector<std::unique_ptr<Source>>& sources,
                     Spool& spool, SpoolDelivery& delivery, WallClockMs wall_ms)
    : options_(std::move(options)),
      sources_(sources),
      spool_(spool),
      delivery_(delivery),
      wall_ms_(std::move(wall_ms)) {
  // What a killed or stopped agent left in the spool is shipped late: a replay.
  if (spool_.count() > 0) replay_through_ = spool_.pending().back();
  delivery_.set_on_acked([this](uint64_t seq) { fresh_.on_acked(seq); });
}

SourceSamples AgentLoop::self_metrics(int64_t now_ms) const {
  return agent_self_metrics(options_.host, static_cast<int64_t>(::getpid()), options_.started_ms,
                            now_ms, counters_, delivery_.stats(),
                            {spool_.bytes(), spool_.count(), spool_.dropped_batches(),
                             spool_.quarantine().count(), spool_.quarantine().bytes(),
                             spool_.quarantine().dropped()});
}

Batch AgentLoop::build_batch(uint64_t seq, int64_t now_ms, ScrapeReport report) const {
  Batch batch;
  batch.agent_id = options_.agent_id;
  batch.seq = seq;
  batch.sent_ms = now_ms;
  batch.sources = std::move(report.sources);
  batch.errors = std::move(report.errors);
  batch.sources.push_back(self_metrics(now_ms));
  return batch;
}

// A source's error is logged as a warning when it first appears or its message changes, and
// once more when the source recovers, so a corrupt file left in place does not flood the log.
void AgentLoop::log_scrape_errors(const std::vector<SourceError>& errors) {
  std::map<std::string, std::string> now;
  for (const auto& e : errors) {
    auto it = reported_errors_.find(e.source);
    if (it == reported_errors_.end() || it->second != e.message)
      log::warn("source " + e.source + ": " + e.message);
    now[e.source] = e.message;
  }
  for (const auto& [source, message] : reported_errors_)
    if (!now.count(source)) log::info("source " + source + " reads again");
  reported_errors_ = std::move(now);
}

// Scrapes each source into one report, counting per source kind what it read and its errors.
// files_only: the HTTP endpoint sources are skipped (the shutdown scrape must stay quick).
ScrapeReport AgentLoop::scrape_counted(int64_t now_ms, bool files_only) {
  const auto started = SteadyClock::now();
  ScrapeReport report;
  last_scrape_.clear();
  for (const auto& source : sources_) {
    if (files_only && !source->reads_local_files()) continue;
    const std::string kind = source->kind();
    const size_t sources_before = report.sources.size(), errors_before = report.errors.size();
    try {
      source->scrape(now_ms, report);
    } catch (const std::exception& e) {  // a source must not throw; contain it if one does
      report.errors.push_back({source->describe(), std::string("scrape threw: ") + e.what()});
    }
    // Every source kind's samples pass the one guard here (agent/sample_guard.h): a source
    // claiming the reserved app "self" is dropped, non-finite values are dropped.
    for (size_t i = sources_before; i < report.sources.size();) {
      if (guard_source(report.sources[i], report.errors)) ++i;
      else report.sources.erase(report.sources.begin() + static_cast<ptrdiff_t>(i));
    }
    SourceStatus st{kind, source->describe(), report.sources.size() - sources_before,
                    report.errors.size() - errors_before, ""};
    if (st.errors > 0) {
      const auto& e = report.errors[errors_before];
      st.first_error = e.source + ": " + e.message;
    }
    for (size_t i = sources_before; i < report.sources.size(); ++i)
      counters_.samples_read += report.sources[i].samples.size();
    counters_.know_kind(kind);
    counters_.sources_read[kind] += st.read;
    counters_.scrape_errors[kind] += st.errors;
    last_scrape_.push_back(std::move(st));
  }
  counters_.scrape_ms =
      std::chrono::duration<double, std::milli>(SteadyClock::now() - started).count();
  // The shutdown scrape skips sources: their errors would read as "reads again".
  if (!files_only) log_scrape_errors(report.errors);
  return report;
}

// Spooled BEFORE any shipping: from here on a kill loses nothing of this scrape.
// A scrape consumes one-time events (a new file's only fresh sighting, a dead writer's final
// read), so a batch the spool cannot store (full disk: begin_batch or put fails) is not
// dropped: it is held in memory and written first at the next tick, in seq order, before the
// newer batch; at most kMaxHeldBatches are held (the oldest is dropped beyond, counted).
void AgentLoop::spool_batch(int64_t now_ms, ScrapeReport report) {
  counters_.held_batches = held_.size();  // as this batch's self-metrics will say
  held_.push_back({0, build_batch(0, now_ms, std::move(report))});
  if (held_.size() > kMaxHeldBatches) {
    if (held_.front().seq != 0) fresh_.on_gone(held_.front().seq);
    held_.pop_front();
    ++counters_.held_dropped;
    log::error("dropped a batch held since the spool could not store it (more than " +
               std::to_string(kMaxHeldBatches) + " held); hint: free space in " + spool_.dir());
  }
  while (!held_.empty() && spool_held(held_.front())) held_.pop_front();
}

// Reserves a seq for `held` (once) and stores it; false (counted, logged once per run of
// failures) if the spool cannot.
bool AgentLoop::spool_held(HeldBatch& held) {
  Status st = Ok{};
  if (held.seq == 0) {
    if (auto seq = spool_.begin_batch(held.batch.sent_ms); !seq) {
      st = seq.error();
    } else {
      held.seq = held.batch.seq = *seq;
      fresh_.on_built(*seq, held.batch.sources);
    }
  }
  if (st) st = spool_.put(held.seq, encode_batch(held.batch));
  if (!st) {
    ++counters_.spool_write_errors;
    if (!spool_failing_)
      log::error("cannot spool the batch of " + std::to_string(held.batch.sent_ms) + ": " +
                 st.error().to_string() + "; it is held in memory and retried every tick");
    spool_failing_ = true;
    return false;
  }
  if (spool_failing_) log::info("the spool stores batches again");
  spool_failing_ = false;
  ++counters_.batches_written;
  return true;
}

// SpoolDelivery::drain, plus the replay count: delivery removes batches oldest first, so the
// batches gone after a drain are a prefix of those pending before it.
bool AgentLoop::drain(SteadyClock::time_point deadline, bool ignore_backoff) {
  const bool own = drain_own(deadline, ignore_backoff);
  const bool others = !options_.also_drain || options_.also_drain(deadline, ignore_backoff);
  return own && others;
}

bool AgentLoop::drain_own(SteadyClock::time_point deadline, bool ignore_backoff) {
  if (spool_.count() == 0) return ship_held(deadline, ignore_backoff);
  const std::vector<uint64_t> before = spool_.pending();
  const DeliveryStats was = delivery_.stats();
  const bool empty = delivery_.drain(deadline, ignore_backoff);
  fresh_.prune([this](uint64_t seq) {
    auto held = [seq](const HeldBatch& h) { return h.seq == seq; };
    return spool_.has(seq) || std::any_of(held_.begin(), held_.end(), held);
  });
  const DeliveryStats& now = delivery_.stats();
  const size_t removed = before.size() - std::min(before.size(), spool_.count());
  uint64_t late = 0;
  for (size_t i = 0; i < removed && before[i] <= replay_through_; ++i) ++late;
  counters_.replayed_batches += std::min<uint64_t>(late, now.acked - was.acked);
  if (now.failed_attempts > was.failed_attempts && spool_.count() > 0)
    replay_through_ = std::max(replay_through_, spool_.pending().back());
  return empty && ship_held(deadline, ignore_backoff);
}

// While the spool's disk is full, held batches are shipped from memory (oldest first, once the
// spool holds nothing older), so the server gets them while this agent runs: a stop or kill
// then loses nothing the server did not already acknowledge. Their seqs are reserved without
// the state file (Spool::begin_batch_unsaved). True when nothing is held any more.
bool AgentLoop::ship_held(SteadyClock::time_point deadline, bool ignore_backoff) {
  while (!held_.empty()) {
    HeldBatch& held = held_.front();
    if (held.seq == 0) {
      held.seq = held.batch.seq = spool_.begin_batch_unsaved(held.batch.sent_ms);
      fresh_.on_built(held.seq, held.batch.sources);
    }
    if (!delivery_.send_held(held.seq, encode_batch(held.batch), deadline, ignore_backoff))
      return false;
    if (!held_shipped_logged_)
      log::info("shipped a batch from memory that the spool could not store (seq " +
                std::to_string(held.seq) + "); held batches are sent this way until the spool " +
                "stores batches again");
    held_shipped_logged_ = true;
    held_.pop_front();
  }
  return true;
}

void AgentLoop::tick(int64_t now_ms, SteadyClock::time_point ship_deadline) {
  spool_batch(now_ms, scrape_counted(now_ms, /*files_only=*/false));
  last_tick_ms_ = now_ms;
  drain(ship_deadline);
}

// A successful reload is followed by a tick at once: rebuilt sources then have scanned once,
// so a file that appears after the reload is told fresh by "not seen at the previous scan"
// rather than by its process start time, which /proc gives only to about a second (the boot
// time is whole seconds). The summary is logged after that tick: from then on, new files count
// whole.
void AgentLoop::reload_now() {
  if (!options_.reload) {
    log::warn("reload requested, but this loop has no configuration to reload");
    return;
  }
  last_reload_ = options_.reload(*this);
  last_reload_ms_ = wall_ms_();
  ++(last_reload_.ok ? counters_.reloads_ok : counters_.reloads_failed);
  if (last_reload_.ok) {
    tick(wall_ms_(), SteadyClock::now() + options_.interval - options_.interval / 10);
    log::info(last_reload_.message);
  }
  if (options_.after_tick) options_.after_tick(*this);
}

// Between ticks, retries the spool as soon as the backoff allows. True at tick_at; false when
// a stop or a reload was requested first.
bool AgentLoop::wait_for_tick(StopSignal& stop, SteadyClock::time_point tick_at) {
  while (spool_.count() > 0 && delivery_.next_attempt() < tick_at) {
    if (stop.wait_until(std::max(delivery_.next_attempt(), SteadyClock::now()))) return false;
    drain(tick_at);
    if (!delivery_.backing_off()) break;  // emptied, or deadline reached
  }
  return !stop.wait_until(tick_at);
}

void AgentLoop::run(StopSignal& stop) {
  while (!stop.requested()) {
    if (stop.take_reload()) reload_now();
    const int64_t interval_ms = options_.interval.count();
    const int64_t now_ms = wall_ms_();
    const int64_t tick_ms = next_aligned_tick(now_ms, interval_ms);
    const auto tick_at = SteadyClock::now() + std::chrono::milliseconds(tick_ms - now_ms);
    if (!wait_for_tick(stop, tick_at)) continue;  // stop, or reload first and wait again
    tick(wall_ms_(), tick_at + options_.interval - std::chrono::milliseconds(interval_ms / 10));
    if (options_.after_tick) options_.after_tick(*this);
  }
}

void AgentLoop::flush_on_shutdown() {
  const int64_t now_ms = wall_ms_();
  spool_batch(now_ms, scrape_counted(now_ms, /*files_only=*/true));
  last_tick_ms_ = now_ms;
  log::info("stopping: shipping " + std::to_string(spool_.count()) + " spooled batch" +
            (spool_.count() == 1 ? "" : "es") +
            (held_.empty() ? "" : " and " + std::to_string(held_.size()) + " held in memory"));
  if (!drain(SteadyClock::now() + options_.shutdown_flush, true) && spool_.count() > 0)
    log::info(std::to_string(spool_.count()) + " batches stay in the spool " + spool_.dir() +
              " and will be sent on the next start");
  if (!held_.empty())
    log::error(std::to_string(held_.size()) + " batches the spool could not store are lost " +
               "at this stop; hint: free space in " + spool_.dir());
}

}  // namespace statherd::agent
