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

void ServerSelfMetrics::labelled_counter(const std::string& name, const std::string& help,
                                         const prometheus::Labels& labels, uint64_t value) {
  const std::string full = "statherd_server_" + name;
  auto [family, fresh] = labelled_families_.try_emplace(full, nullptr);
  if (fresh)
    family->second = &prometheus::BuildCounter().Name(full).Help(help).Register(*registry_);
  prometheus::Counter& c = family->second->Add(labels);  // the existing one for these labels
  double now = static_cast<double>(value);
  if (now > c.Value()) c.Increment(now - c.Value());
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
  update_engine(v);
  update_lifecycle(v);
  if (v.graphite) update_graphite(*v.graphite);
  if (v.remote_write) update_remote_write(*v.remote_write);
}

void ServerSelfMetrics::update_engine(const ServerSelfValues& v) {
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
  counter("counters_rejected_total", "negative or non-finite counter values refused",
          e.counters_rejected);
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
}

void ServerSelfMetrics::update_lifecycle(const ServerSelfValues& v) {
  counter("reloads_ok_total", "SIGHUP reloads applied", v.reloads_ok);
  counter("reloads_failed_total", "SIGHUP reloads refused (the running config was kept)",
          v.reloads_failed);
  gauge("rollup_seconds", "seconds the last interval's rollup took (engine flush + sinks)",
        v.rollup_ms / 1000.0);
  gauge("ready", "1 when GET /readyz answers 200", v.ready ? 1.0 : 0.0);
  gauge("connections", "open HTTP connections", static_cast<double>(v.connections_open));
  gauge("resident_bytes", "the server process's resident memory (RSS), bytes; 0: unreadable",
        static_cast<double>(v.resident_bytes));
  if (v.heap) {
    gauge("heap_allocated_bytes", "heap bytes the server holds (allocated, not yet freed)",
          static_cast<double>(v.heap->allocated));
    gauge("heap_free_bytes",
          "heap bytes the allocator keeps and has not given back to the kernel: free lists "
          "and span overhead",
          static_cast<double>(v.heap->free));
  }
  counter("connections_evicted_total",
          "idle HTTP connections closed at limits.max_connections to admit a new one",
          v.connections_evicted);
  counter("connections_refused_total",
          "new HTTP connections closed at limits.max_connections (none was idle)",
          v.connections_refused);
  counter("wal_failures_total", "write-ahead log appends that failed (batch answered 500)",
          v.engine.wal_failures);
  counter("wal_damaged_records_total",
          "damaged write-ahead log records skipped at the last start (see /readyz)",
          v.engine.wal_damaged_records);
  counter("wal_quarantined_records_total",
          "write-ahead log records that could not be replayed, moved to quarantine/",
          v.engine.wal_quarantined_records);
}

void ServerSelfMetrics::update_graphite(const GraphiteSink::Counters& g) {
  counter("graphite_lines_queued_total", "lines queued for Carbon", g.lines_queued);
  counter("graphite_lines_sent_total", "lines written to Carbon", g.lines_sent);
  counter("graphite_lines_dropped_total", "lines dropped (queue full, oldest first)",
          g.lines_dropped);
  counter("graphite_lines_delayed_total", "lines held back by new-series pacing", g.lines_delayed);
  counter("graphite_lines_filtered_total", "lines refused by graphite.rules (forbid or prune)",
          g.lines_filtered);
  counter("graphite_non_finite_skipped_total", "NaN or infinite values not sent to Carbon",
          g.non_finite_skipped);
  counter("graphite_path_collisions_total",
          "paths shared by distinct series after sanitizing (each reported once)",
          g.path_collisions);
  counter("graphite_connects_total", "connections made to Carbon (reconnects included)",
          g.connects);
  counter("graphite_connect_failures_total", "failed connections to Carbon", g.connect_failures);
  counter("graphite_write_failures_total", "failed writes to Carbon", g.write_failures);
  gauge("graphite_queue_depth", "lines waiting for Carbon", static_cast<double>(g.queue_depth));
}

// queued == sent + dropped + rejected + queue_depth + in_flight holds in every scrape.
void ServerSelfMetrics::update_remote_write(const RemoteWriteSink::Counters& rw) {
  counter("remote_write_samples_queued_total", "samples queued for the remote-write receiver",
          rw.samples_queued);
  counter("remote_write_samples_sent_total", "samples accepted by the receiver (2xx)",
          rw.samples_sent);
  counter("remote_write_samples_dropped_total",
          "samples dropped: queue full (oldest first) or unsent at shutdown", rw.samples_dropped);
  counter("remote_write_samples_rejected_total",
          "samples refused with a non-retryable 4xx (after splitting the batch)",
          rw.samples_rejected);
  for (int r = 0; r < 4; ++r) {
    const char* reason = rw_reject_name(static_cast<RwReject>(r));
    labelled_counter("remote_write_rejected_samples_total",
                     "samples refused by the receiver, by reason (out_of_order, duplicate, "
                     "out_of_bounds, other)", {{"reason", reason}}, rw.rejected_by_reason[r]);
  }
  counter("remote_write_samples_skipped_total",
          "samples at or before their series' high-water mark (already delivered): not sent",
          rw.samples_skipped);
  counter("remote_write_batch_splits_total",
          "refused batches split in two and resent to keep their valid samples", rw.batch_splits);
  counter("remote_write_stale_cuts_total",
          "refused batches resent without their oldest samples (from before the start or URL "
          "change, which the receiver already holds)", rw.stale_cuts);
  counter("remote_write_requests_total", "write requests made (retries included)", rw.requests);
  counter("remote_write_request_failures_total",
          "requests that failed: connection error, 5xx, 429 or other non-2xx",
          rw.request_failures);
  counter("remote_write_retries_total", "requests retried after a backoff", rw.retries);
  counter("remote_write_reemits_skipped_total",
          "re-emitted (late) intervals not sent; the next interval carries their counts",
          rw.reemits_skipped);
  gauge("remote_write_queue_depth", "samples waiting in the queue",
        static_cast<double>(rw.queue_depth));
  gauge("remote_write_samples_in_flight", "samples in the request being sent or retried",
        static_cast<double>(rw.samples_in_flight));
  gauge("remote_write_last_status", "HTTP status of the last request (0: connection error)",
        static_cast<double>(rw.last_status));
}

std::vector<prometheus::MetricFamily> ServerSelfMetrics::collect() const {
  std::lock_guard lock(mutex_);
  return registry_->Collect();
}

}  // namespace statherd::server
