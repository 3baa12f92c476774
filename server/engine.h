// The server's core: ingest (decode, dedup, write-ahead log, per-source counter deltas) and the
// per-interval rollup. Single-threaded: the HTTP server calls it from its io_context thread.
// Time is always a parameter (now_ms, wall clock) so tests drive it.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/wire.h"
#include "server/series_point.h"

namespace statherd::server {

struct EngineOptions {
  std::chrono::milliseconds interval{10'000};      // rollup interval, aligned to wall clock
  std::chrono::milliseconds grace{2'000};          // an interval is emitted at end + grace
  std::chrono::milliseconds late_window{600'000};  // late data older than this goes to the
                                                   // oldest open interval (counted, not lost)
  std::chrono::milliseconds idle_timeout{300'000}; // series/sources unseen this long are dropped
  bool level_process = false;
  bool level_host = true;
  bool level_app = true;
  uint64_t max_series_total = 1'000'000;   // rejected series are counted
  uint64_t max_series_per_source = 10'000;
  // The source errors an agent reports (shown by /api/v1/sources and the web page): kept from
  // its last batch up to this many, each source name and message cut to max_error_bytes, and
  // for at most max_agents_with_errors agents at a time; what is not kept is counted.
  uint64_t max_errors_per_agent = 16;
  uint64_t max_error_bytes = 512;
  uint64_t max_agents_with_errors = 256;
  std::string state_dir;   // write-ahead log + snapshots; empty: in memory only (tests, bench)
  bool fsync = true;       // fsync the WAL before acknowledging
  WireLimits wire_limits;
};

struct IngestOutcome {
  int http_status = 200;       // 200 ok (also for a duplicate), 400 bad payload, 500 WAL failure
  std::string message;         // for the response body / log
  bool duplicate = false;
  uint64_t samples = 0;
};

struct EngineStats {
  uint64_t batches = 0, duplicates = 0, rejected_batches = 0;
  uint64_t samples_in = 0, series_rejected = 0, late_samples = 0;
  uint64_t resets = 0;  // a counter or cumulative distribution went down (a process restart)
  uint64_t counters_rejected = 0;  // negative or non-finite cumulative counter values refused
  uint64_t series = 0, sources = 0;
  uint64_t wal_bytes = 0;
  uint64_t wal_failures = 0;   // appends that failed (the batch got a 500, the agent retries)
  // Recovery at open(): damaged WAL ranges skipped, records quarantined (undecodable, or the
  // one a previous replay crashed on), the newest damage "wal-N.log offset X (N bytes)".
  uint64_t wal_damaged_records = 0;
  uint64_t wal_quarantined_records = 0;
  std::string wal_last_damage;
  // A snapshot that did not verify at open(): where it was moved (quarantine/); empty if none.
  std::string snapshot_quarantined;
  bool wal_ok = true;          // false while the last append failed (GET /readyz: not ready)
};

class Engine {
 public:
  explicit Engine(EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Create state_dir (mode 0700) if needed and recover: load the last snapshot, replay the WAL
  // (damaged records skipped, unreplayable ones quarantined; see engine_recovery.cpp).
  Status open(int64_t now_ms);

  // A raw request body (the wire format). Acknowledge (200) only after the batch is in the WAL.
  IngestOutcome ingest(std::string_view body, int64_t now_ms);

  // The server's own self-metrics (statherd.self.server.*): applied like one source of a batch
  // (same deltas and rollup), but not written to the WAL and not deduplicated, and not counted
  // in samples_in. Mark the source fresh on its first call so its counters count from zero.
  void ingest_local(const SourceSamples& source, int64_t now_ms);

  // Emit every interval that has ended (end + grace <= now) and was not emitted yet, and
  // re-emit (full values) every emitted interval that late data changed. Ticks EWMAs, expires
  // idle series and sources, checkpoints the WAL.
  std::vector<IntervalOutput> flush(int64_t now_ms);

  // Shutdown: like flush, but also emits the current, unfinished interval.
  std::vector<IntervalOutput> drain(int64_t now_ms);

  // For GET /api/v1/sources: agents (last seq, last seen) and sources (host, app, pid, start
  // time, path, last seen, errors reported by the agent).
  nlohmann::json sources_json(int64_t now_ms) const;

  EngineStats stats() const;
  const EngineOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace statherd::server
