// The server's own counters as `statherd_server_*` Prometheus series (for GET /metrics),
// kept in a prometheus::Registry: Engine::stats(), the memory store, the Prometheus sink and,
// when configured, the Graphite and remote_write sinks (docs/OPERATIONS.md lists them). update() copies the current values in (counters advance
// by the difference, so they stay monotonic); collect() hands the families to the serializer.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server/engine.h"
#include "server/heap_tuning.h"
#include "server/sinks/graphite.h"
#include "server/sinks/prometheus.h"
#include "server/sinks/remote_write.h"

namespace statherd::server {

struct ServerSelfValues {
  EngineStats engine;
  uint64_t memory_paths = 0, memory_refused_paths = 0;
  PrometheusSink::Counters prometheus;
  std::optional<GraphiteSink::Counters> graphite;  // nullopt: no Graphite sink configured
  std::optional<RemoteWriteSink::Counters> remote_write = std::nullopt;  // nullopt: none
  uint64_t reloads_ok = 0, reloads_failed = 0;  // SIGHUP results
  double rollup_ms = 0;                         // the last interval's rollup, all sinks fed
  bool ready = true;                            // what GET /readyz says
  uint64_t connections_open = 0;                // HTTP connections (server/server_status.h)
  uint64_t connections_evicted = 0, connections_refused = 0;
  uint64_t resident_bytes = 0;      // the process's RSS (0: it could not be read)
  std::optional<HeapFigures> heap = std::nullopt;  // the allocator's figures (none: no gauges)
};

class ServerSelfMetrics {
 public:
  ServerSelfMetrics();
  void update(const ServerSelfValues& values);
  std::vector<prometheus::MetricFamily> collect() const;

 private:
  void update_engine(const ServerSelfValues& values);
  void update_lifecycle(const ServerSelfValues& values);
  void update_graphite(const GraphiteSink::Counters& g);
  void update_remote_write(const RemoteWriteSink::Counters& rw);
  void counter(const std::string& name, const std::string& help, uint64_t value);
  void gauge(const std::string& name, const std::string& help, double value);
  void labelled_counter(const std::string& name, const std::string& help,
                        const prometheus::Labels& labels, uint64_t value);

  mutable std::mutex mutex_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::map<std::string, prometheus::Counter*> counters_;
  std::map<std::string, prometheus::Gauge*> gauges_;
  std::map<std::string, prometheus::Family<prometheus::Counter>*> labelled_families_;
};

}  // namespace statherd::server
