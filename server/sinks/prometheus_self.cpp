#include "server/sinks/prometheus_self.h"

namespace statherd::server {

ServerSelfMetrics::ServerSelfMetrics() : registry_(std::make_shared<prometheus::Registry>()) {}

void ServerSelfMetrics::counter(const std::string& name, const std::string& help, uint64_t value) {
  auto [it, fresh] = counters_.try_emplace("statherd_server_" + name, nullptr);
  if (fresh) {
    it->second = &prometheus::BuildCounter().Name(it->first).Help(help).Register(*registry_).Add({});
  }
  double now = static_cast<double>(value);
  if (now > it->second->Value()) it->second->Increment(now - it->second->Value());
}

void ServerSelfMetrics::gauge(const std::string& name, const std::string& help, double value) {
  auto [it, fresh] = gauges_.try_emplace("statherd_server_" + name, nullptr);
  if (fresh) {
    it->second = &prometheus::BuildGauge().Name(it->first).Help(help).Register(*registry_).Add({});
  }
  it->second->Set(value);
}

void ServerSelfMetrics::update(const ServerSelfValues& v) {
  std::lock_guard lock(mutex_);
  const EngineStats& e = v.engine;
  counter("batches_total", "batches acknowledged (duplicates included)", e.batches);
  counter("duplicate_batches_total", "batches already seen (agent retries), not counted again",
          e.duplicates);
  counter("rejected_batches_total", "batches refused as malformed", e.rejected_batches);
  counter("samples_in_total", "samples ingested", e.samples_in);
  counter("series_rejected_total", "new series refused by the cardinality budget",
          e.series_rejected);
  counter("late_samples_total", "samples that arrived after their interval was emitted",
          e.late_samples);
  counter("source_resets_total", "counter resets seen (process restarts)", e.resets);
  gauge("series", "rolled-up series held by the engine", static_cast<double>(e.series));
  gauge("sources", "sources (processes) reporting", static_cast<double>(e.sources));
  gauge("wal_bytes", "bytes in the write-ahead log", static_cast<double>(e.wal_bytes));
  gauge("memory_store_paths", "Graphite paths in the in-memory store",
        static_cast<double>(v.memory_paths));
  counter("memory_store_refused_paths_total", "paths refused by the memory store's limit",
          v.memory_refused_paths);
  const PrometheusSink::Counters& p = v.prometheus;
  gauge("prometheus_series", "series exposed on /metrics", static_cast<double>(p.series));
  counter("prometheus_series_rejected_total", "series refused by the /metrics series limit",
          p.series_rejected);
  counter("prometheus_series_expired_total", "idle series removed from /metrics",
          p.series_expired);
  counter("prometheus_type_conflicts_total", "points whose name is taken by another type",
          p.type_conflicts);
  if (!v.graphite) return;
  const GraphiteSink::Counters& g = *v.graphite;
  counter("graphite_lines_queued_total", "lines queued for Carbon", g.lines_queued);
  counter("graphite_lines_sent_total", "lines written to Carbon", g.lines_sent);
  counter("graphite_lines_dropped_total", "lines dropped (queue full, oldest first)",
          g.lines_dropped);
  counter("graphite_lines_delayed_total", "lines held back by new-series pacing", g.lines_delayed);
  counter("graphite_connect_failures_total", "failed connections to Carbon", g.connect_failures);
  counter("graphite_write_failures_total", "failed writes to Carbon", g.write_failures);
  gauge("graphite_queue_depth", "lines waiting for Carbon", static_cast<double>(g.queue_depth));
}

std::vector<prometheus::MetricFamily> ServerSelfMetrics::collect() const {
  std::lock_guard lock(mutex_);
  return registry_->Collect();
}

}  // namespace statherd::server
