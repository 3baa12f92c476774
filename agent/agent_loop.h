// The agent's main loop: at every wall-clock multiple of the interval, scrape every source,
// build a Batch, write it to the spool FIRST, then ship spooled batches oldest first.
// A reload (SIGHUP) is applied here, between ticks, by the loop's own thread.
// Clocks are parameters so tests can drive the loop.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/delivery.h"
#include "agent/delivery_fresh.h"
#include "agent/self_metrics.h"
#include "agent/sources/source.h"
#include "agent/spool.h"
#include "agent/status_file.h"
#include "common/wire.h"

namespace statherd::agent {

// The first wall-clock multiple of interval_ms strictly after now_ms.
int64_t next_aligned_tick(int64_t now_ms, int64_t interval_ms);

// Set from the signal thread, waited on by the loop: stop (SIGTERM/SIGINT) and reload (SIGHUP).
class StopSignal {
 public:
  void request();
  bool requested() const;
  void request_reload();
  // True once per request_reload() (several SIGHUPs before the loop looks are one reload).
  bool take_reload();
  // Waits until `until`, a stop or a reload request; returns true if one of those came.
  bool wait_until(SteadyClock::time_point until);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool reload_ = false;
};

// What a reload did: ok (applied, maybe partly: settings that need a restart are kept) or
// failed (nothing changed); message is the one-line summary logged and shown by --status.
struct ReloadOutcome {
  bool ok = false;
  std::string message;
};

// Reads every source once into one report (each source's failures stay its own errors).
ScrapeReport scrape_all(const std::vector<std::unique_ptr<Source>>& sources, int64_t now_ms);

class AgentLoop;

// Batches kept in memory while the spool cannot store them (a full disk): beyond this many the
// oldest is dropped (counted in agent.spool.held_dropped).
inline constexpr size_t kMaxHeldBatches = 60;

struct AgentLoopOptions {
  std::string agent_id;
  std::string host;
  std::chrono::milliseconds interval{10'000};
  std::chrono::milliseconds shutdown_flush{2'000};  // time allowed to ship on SIGTERM
  int64_t started_ms = 0;                           // agent start (self-metrics identity)
  // Called between ticks after a reload request (SIGHUP); none: reloads are ignored.
  std::function<ReloadOutcome(AgentLoop&)> reload{};
  // Called after each tick and each reload (the daemon writes its status file here).
  std::function<void(const AgentLoop&)> after_tick{};
  // In a cluster: ships the servers' own spools after the agent's (agent/cluster_delivery.h);
  // true when they are empty.
  std::function<bool(SteadyClock::time_point deadline, bool ignore_backoff)> also_drain{};
};

class AgentLoop {
 public:
  using WallClockMs = std::function<int64_t()>;
  AgentLoop(AgentLoopOptions options, const std::vector<std::unique_ptr<Source>>& sources,
            Spool& spool, SpoolDelivery& delivery, WallClockMs wall_ms);

  // One interval: scrape, spool, ship (shipping stops at `ship_deadline`).
  void tick(int64_t now_ms, SteadyClock::time_point ship_deadline);
  // Builds the batch of one scrape (exposed for tests; spooling also keeps `fresh` flags, see
  // agent/delivery_fresh.h).
  Batch build_batch(uint64_t seq, int64_t now_ms, ScrapeReport report) const;
  // Runs until stop is requested.
  void run(StopSignal& stop);
  // After run(): scrapes the local file sources once more and spools that batch (cheap, and
  // the increments since the last tick then need no agent restart to arrive), then tries once
  // (options.shutdown_flush) to ship what is spooled; the rest stays for the next start.
  void flush_on_shutdown();
  // Applies a reload now (run() does this between ticks); a successful one is followed by a
  // tick at once (see agent_loop.cpp).
  void reload_now();

  // Settings a reload may change.
  void set_interval(std::chrono::milliseconds interval) { options_.interval = interval; }
  void set_host(std::string host) { options_.host = std::move(host); }
  std::chrono::milliseconds interval() const { return options_.interval; }

  const AgentSelfCounters& counters() const { return counters_; }
  const std::vector<SourceStatus>& last_scrape() const { return last_scrape_; }
  int64_t last_tick_ms() const { return last_tick_ms_; }
  const ReloadOutcome& last_reload() const { return last_reload_; }
  // Batches scraped but not yet in the spool (its writes failed); see spool_batch.
  size_t held_batches() const { return held_.size(); }
  int64_t last_reload_ms() const { return last_reload_ms_; }

 private:
  ScrapeReport scrape_counted(int64_t now_ms, bool files_only);
  // A batch the spool could not take yet: seq 0 until begin_batch succeeds for it.
  struct HeldBatch {
    uint64_t seq = 0;
    Batch batch;
  };
  void spool_batch(int64_t now_ms, ScrapeReport report);
  bool spool_held(HeldBatch& held);
  bool ship_held(SteadyClock::time_point deadline, bool ignore_backoff);
  bool drain(SteadyClock::time_point deadline, bool ignore_backoff = false);
  bool drain_own(SteadyClock::time_point deadline, bool ignore_backoff);
  bool wait_for_tick(StopSignal& stop, SteadyClock::time_point tick_at);
  void log_scrape_errors(const std::vector<SourceError>& errors);
  SourceSamples self_metrics(int64_t now_ms) const;

  AgentLoopOptions options_;
  const std::vector<std::unique_ptr<Source>>& sources_;
  Spool& spool_;
  SpoolDelivery& delivery_;
  WallClockMs wall_ms_;
  std::map<std::string, std::string> reported_errors_;  // source -> last logged message
  AgentSelfCounters counters_;
  std::vector<SourceStatus> last_scrape_;
  int64_t last_tick_ms_ = 0;
  // Batches up to this seq were in the spool when a ship attempt failed or the agent started:
  // shipping them later counts as a replay.
  uint64_t replay_through_ = 0;
  ReloadOutcome last_reload_;
  int64_t last_reload_ms_ = 0;
  FreshUntilAcked fresh_;  // sources' fresh flags, kept until a batch carrying them is acked
  std::deque<HeldBatch> held_;  // oldest first; at most kMaxHeldBatches
  bool held_shipped_logged_ = false;
  bool spool_failing_ = false;  // logging: once per run of failed spool writes
};

}  // namespace statherd::agent
