#include "agent/agent_loop.h"

#include <map>

#include <unistd.h>

#include <algorithm>

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

bool StopSignal::wait_until(SteadyClock::time_point until) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_until(lock, until, [this] { return stop_; });
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
      wall_ms_(std::move(wall_ms)) {}

SourceSamples AgentLoop::self_metrics(int64_t now_ms) const {
  SourceSamples self;
  self.id = {options_.host, "statherd-agent", static_cast<int64_t>(::getpid()),
             options_.started_ms, "statherd-agent"};
  const auto& d = delivery_.stats();
  auto add = [&](const char* name, Kind kind, double v) {
    Sample s;
    s.name = name;
    s.kind = kind;
    s.timestamp_ms = now_ms;
    s.value = v;
    self.samples.push_back(std::move(s));
  };
  add("spool.bytes", Kind::Gauge, static_cast<double>(spool_.bytes()));
  add("spool.batches", Kind::Gauge, static_cast<double>(spool_.count()));
  add("spool.dropped_batches", Kind::Counter, static_cast<double>(spool_.dropped_batches()));
  add("spool.write_errors", Kind::Counter, static_cast<double>(spool_write_errors_));
  add("ship.acked_batches", Kind::Counter, static_cast<double>(d.acked));
  add("ship.rejected_batches", Kind::Counter, static_cast<double>(d.rejected));
  add("ship.failed_attempts", Kind::Counter, static_cast<double>(d.failed_attempts));
  add("scrape.errors", Kind::Counter, static_cast<double>(scrape_errors_));
  return self;
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

void AgentLoop::tick(int64_t now_ms, SteadyClock::time_point ship_deadline) {
  ScrapeReport report = scrape_all(sources_, now_ms);
  scrape_errors_ += report.errors.size();
  log_scrape_errors(report.errors);
  auto seq = spool_.begin_batch(now_ms);
  if (!seq) {
    ++spool_write_errors_;
    log::error("cannot persist the agent state: " + seq.error().to_string());
  } else {
    std::string encoded = encode_batch(build_batch(*seq, now_ms, std::move(report)));
    if (auto st = spool_.put(*seq, encoded); !st) {
      ++spool_write_errors_;
      log::error("cannot spool batch seq " + std::to_string(*seq) + ": " + st.error().to_string());
    }
  }
  delivery_.drain(ship_deadline);
}

void AgentLoop::run(StopSignal& stop) {
  const int64_t interval_ms = options_.interval.count();
  while (!stop.requested()) {
    int64_t now_ms = wall_ms_();
    int64_t tick_ms = next_aligned_tick(now_ms, interval_ms);
    auto tick_at = SteadyClock::now() + std::chrono::milliseconds(tick_ms - now_ms);
    // Between ticks, retry the spool as soon as the backoff allows.
    while (spool_.count() > 0 && delivery_.next_attempt() < tick_at && !stop.requested()) {
      if (stop.wait_until(std::max(delivery_.next_attempt(), SteadyClock::now()))) break;
      delivery_.drain(tick_at);
      if (!delivery_.backing_off()) break;  // emptied, or deadline reached
    }
    if (stop.wait_until(tick_at)) break;
    tick(wall_ms_(), tick_at + options_.interval - std::chrono::milliseconds(interval_ms / 10));
  }
}

void AgentLoop::flush_on_shutdown() {
  if (spool_.count() > 0) {
    log::info("stopping: shipping " + std::to_string(spool_.count()) + " spooled batches");
    if (!delivery_.drain(SteadyClock::now() + options_.shutdown_flush, true))
      log::info(std::to_string(spool_.count()) + " batches stay in the spool " + spool_.dir() +
                " and will be sent on the next start");
  }
}

}  // namespace statherd::agent
