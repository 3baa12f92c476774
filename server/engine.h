// The server's core: ingest (decode, dedup, write-ahead log, per-source counter deltas) and the
// per-interval rollup. Time is always a parameter (now_ms, wall clock) so tests drive it.
// Threads: a rollup may use EngineOptions::threads (a fork-join pool, server/fork_join_pool.h)
// and emits exactly what one thread would. Every call is serialized by one lock, but stats() and admit() never take it, so a
// rollup running on the pipeline thread never delays them. Two ways to feed it:
//   - ingest(): decode, WAL append, apply, in one call (tests, benches, a single thread);
//   - pipelined (the server): take_wal() once after open(); then admit() on the ingest thread
//     (decode, known duplicates), a WalCommitter logs the record, apply_admitted() on the
//     pipeline thread; snapshot_due()/snapshot_at() checkpoint once the committer rotated.
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
  uint64_t max_series_total = 4'000'000;   // rejected series are counted
  uint64_t max_series_per_source = 10'000;
  // The source errors an agent reports (shown by /api/v1/sources and the web page): kept from
  // its last batch up to this many, each source name and message cut to max_error_bytes, and
  // for at most max_agents_with_errors agents at a time; what is not kept is counted.
  uint64_t max_errors_per_agent = 16;
  uint64_t max_error_bytes = 512;
  uint64_t max_agents_with_errors = 256;
  std::string state_dir;   // write-ahead log + snapshots; empty: in memory only (tests, bench)
  // A snapshot (which retires the WAL files it covers) is written this often, or sooner when
  // the WAL has grown to snapshot_wal_bytes. It writes the whole state (~50 MB at 400k series)
  // under the engine lock; a restart replays the WAL written since the last one.
  std::chrono::milliseconds snapshot_every{300'000};
  uint64_t snapshot_wal_bytes = 256ull << 20;
  bool fsync = true;       // fsync the WAL before acknowledging
  // Threads of the rollup (flush/drain), sharded by series: 0 = auto (the machine's cores, at
  // most 16), 1 = none besides the caller. The output is the same whatever the number.
  unsigned threads = 1;
  // A rollup shard holds at least this many series (and a thread's chunk of the interval at
  // least this many values): below, splitting costs more than it saves. Tests set it low.
  uint32_t min_shard_series = 4096;
  WireLimits wire_limits;
};

struct IngestOutcome {
  int http_status = 200;       // 200 ok (also for a duplicate), 400 bad payload, 500 WAL failure
  std::string message;         // for the response body / log
  bool duplicate = false;
  uint64_t samples = 0;
};

// What admit() decided: `batch` set means "log `record`, then apply_admitted(*batch)";
// unset means answer `outcome` now (400/413/503, or a duplicate already applied).
struct Admission {
  IngestOutcome outcome;
  std::shared_ptr<const Batch> batch;
  std::string record;  // the WAL record (frame_wal_record) for the committer
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

  // Pipelined ingest (see the top of this file). admit() is thread-safe and takes no lock:
  // decode (400/413 answered at once), a batch already logged is a duplicate (200), a resend
  // of one being logged gets 503.
  Admission admit(std::string_view body, int64_t now_ms);
  // Whether the committer logged an admitted batch (before its answer): a resend of it is a
  // duplicate from then on; a failed one may be sent again.
  void logged(const Batch& batch, bool ok);
  // Apply a batch the committer logged (a duplicate of an applied one is skipped again).
  void apply_admitted(const Batch& batch, int64_t now_ms);
  // Hand the WAL to a committer: closes this engine's writer and returns the file number to
  // append to. From then on flush()/drain() do not snapshot: snapshot_due() says when, and
  // snapshot_at() writes one once the committer has rotated to `next_wal`.
  uint64_t take_wal();
  bool snapshot_due(int64_t now_ms, uint64_t wal_bytes);
  Status snapshot_at(uint64_t next_wal, int64_t now_ms);
  // The rotation for a snapshot failed (a full disk): the next try comes when one is due again.
  void postpone_snapshot(int64_t now_ms);
  // The committer's health for stats() and GET /readyz.
  void note_wal(bool ok, uint64_t bytes);

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

  struct Impl;  // server/engine_impl.h (internal)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace statherd::server
