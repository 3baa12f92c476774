// What statherd-server runs besides HTTP: its self-metrics (GET /metrics on the io thread, the
// pipeline's statherd.self.server.* on the pipeline thread), readiness (GET /readyz, io
// thread) and SIGHUP reloads (pipeline thread, between rollups).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "server/api_routes.h"
#include "server/engine.h"
#include "server/heap_tuning.h"
#include "server/ingest_token.h"
#include "server/memory_store.h"
#include "server/server_config.h"
#include "server/server_reload.h"
#include "server/server_status.h"
#include "server/sink_set.h"
#include "server/sinks/prometheus_self.h"

namespace statherd::server {

class ServerRuntime {
 public:
  // `args`: the command line (without argv[0]); a reload parses it again, re-reading --config.
  ServerRuntime(ServerConfig config, std::vector<std::string> args, Engine& engine,
                MemoryStore& store, SinkSet& sinks, IngestToken& token,
                const ServerStatus& status, int64_t started_ms,
                std::function<std::optional<HeapFigures>()> heap_probe = {});

  ServerSelfValues self_values() const;
  // GET /metrics: every rolled-up series and the statherd_server_* self-metrics.
  std::string scrape();
  // GET /metrics in two steps: the self-metrics are taken here, on the io thread (they read the
  // Engine); the returned function runs on the read thread and adds the Prometheus sink's text
  // of every series, shared by every scrape of one interval.
  std::function<ScrapeText()> prepare_scrape();
  // Before each rollup: the server's own counters go through the pipeline as app "self".
  void ingest_self(int64_t now_ms);
  // GET /readyz: ready to take batches (not draining, the WAL writable); the sinks' queues are
  // reported for the operator but do not make the server unready (ingest goes on).
  nlohmann::json readiness() const;
  // SIGHUP: a new configuration that loads and validates is applied (the ingest token, sinks,
  // rules); otherwise the running one stays and the log says why. Returns whether it was
  // applied.
  bool reload();

  const ServerConfig& config() const { return config_; }
  uint64_t reloads_ok() const { return reloads_ok_.load(); }
  uint64_t reloads_failed() const { return reloads_failed_.load(); }

 private:
  ServerConfig config_;
  const StoreNaming store_naming_;  // the memory store's Graphite naming: the one it started with
  std::vector<std::string> args_;
  Engine& engine_;
  MemoryStore& store_;
  SinkSet& sinks_;
  IngestToken& token_;
  const ServerStatus& status_;
  bool wal_on_;
  SourceIdentity self_id_;
  std::function<std::optional<HeapFigures>()> heap_probe_;  // empty: no heap gauges
  ServerSelfMetrics self_metrics_;
  std::atomic<uint64_t> reloads_ok_{0}, reloads_failed_{0};
};

}  // namespace statherd::server
