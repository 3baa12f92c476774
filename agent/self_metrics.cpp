#include "agent/self_metrics.h"

namespace statherd::agent {

void AgentSelfCounters::know_kind(const std::string& kind) {
  sources_read.try_emplace(kind, 0);
  scrape_errors.try_emplace(kind, 0);
}

namespace {

class SampleAdder {
 public:
  SampleAdder(SourceSamples& out, int64_t now_ms) : out_(out), now_ms_(now_ms) {}
  void operator()(const char* name, Kind kind, double value, Tags tags = {}) {
    Sample s;
    s.name = name;
    s.kind = kind;
    s.timestamp_ms = now_ms_;
    s.value = value;
    s.tags = std::move(tags);
    out_.samples.push_back(std::move(s));
  }

 private:
  SourceSamples& out_;
  int64_t now_ms_;
};

double d(uint64_t v) {
  return static_cast<double>(v);
}

}  // namespace

SourceSamples agent_self_metrics(const std::string& host, int64_t pid, int64_t started_ms,
                                 int64_t now_ms, const AgentSelfCounters& c,
                                 const DeliveryStats& delivery, const SpoolGauges& spool) {
  SourceSamples self;
  self.id = {host, kSelfApp, pid, started_ms, kSelfPath};
  SampleAdder add(self, now_ms);
  for (const auto& [kind, n] : c.sources_read)
    add("agent.sources_read", Kind::Counter, d(n), {{"source", kind}});
  for (const auto& [kind, n] : c.scrape_errors)
    add("agent.scrape_errors", Kind::Counter, d(n), {{"source", kind}});
  add("agent.samples_read", Kind::Counter, d(c.samples_read));
  add("agent.scrape_seconds", Kind::Gauge, c.scrape_ms / 1000.0);  // base unit: promtool
  add("agent.spool.batches_written", Kind::Counter, d(c.batches_written));
  add("agent.spool.write_errors", Kind::Counter, d(c.spool_write_errors));
  add("agent.spool.held_batches", Kind::Gauge, d(c.held_batches));
  add("agent.spool.held_dropped", Kind::Counter, d(c.held_dropped));
  add("agent.spool.batches", Kind::Gauge, d(spool.batches));
  add("agent.spool.bytes", Kind::Gauge, d(spool.bytes));
  add("agent.spool.dropped_batches", Kind::Counter, d(spool.dropped_batches));
  add("agent.spool.unreadable_batches", Kind::Counter, d(delivery.unreadable));
  add("agent.ship.acked_batches", Kind::Counter, d(delivery.acked));
  add("agent.spool.quarantined_batches", Kind::Counter, d(delivery.quarantined));
  add("agent.spool.quarantine.batches", Kind::Gauge, d(spool.quarantine_batches));
  add("agent.spool.quarantine.bytes", Kind::Gauge, d(spool.quarantine_bytes));
  add("agent.spool.quarantine.dropped_batches", Kind::Counter, d(spool.quarantine_dropped));
  add("agent.ship.split_batches", Kind::Counter, d(delivery.split_batches));
  add("agent.ship.unauthorized", Kind::Counter, d(delivery.unauthorized));
  add("agent.ship.failed_attempts", Kind::Counter, d(delivery.failed_attempts));
  add("agent.ship.replayed_batches", Kind::Counter, d(c.replayed_batches));
  add("agent.reloads", Kind::Counter, d(c.reloads_ok), {{"result", "ok"}});
  add("agent.reloads", Kind::Counter, d(c.reloads_failed), {{"result", "failed"}});
  return self;
}

}  // namespace statherd::agent
