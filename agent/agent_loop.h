// The agent's main loop: at every wall-clock multiple of the interval, scrape every source,
// build a Batch, write it to the spool FIRST, then ship spooled batches oldest first.
// Clocks are parameters so tests can drive the loop.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/delivery.h"
#include "agent/sources/source.h"
#include "agent/spool.h"
#include "common/wire.h"

namespace statherd::agent {

// The first wall-clock multiple of interval_ms strictly after now_ms.
int64_t next_aligned_tick(int64_t now_ms, int64_t interval_ms);

// Set from the signal thread, waited on by the loop.
class StopSignal {
 public:
  void request();
  bool requested() const;
  // Waits until `until` or a stop request; returns true if stop was requested.
  bool wait_until(SteadyClock::time_point until);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

// Reads every source once into one report (each source's failures stay its own errors).
ScrapeReport scrape_all(const std::vector<std::unique_ptr<Source>>& sources, int64_t now_ms);

struct AgentLoopOptions {
  std::string agent_id;
  std::string host;
  std::chrono::milliseconds interval{10'000};
  std::chrono::milliseconds shutdown_flush{2'000};  // time allowed to ship on SIGTERM
  int64_t started_ms = 0;                            // agent start (self-metrics identity)
};

class AgentLoop {
 public:
  using WallClockMs = std::function<int64_t()>;
  AgentLoop(AgentLoopOptions options, const std::vector<std::unique_ptr<Source>>& sources,
            Spool& spool, SpoolDelivery& delivery, WallClockMs wall_ms);

  // One interval: scrape, spool, ship (shipping stops at `ship_deadline`).
  void tick(int64_t now_ms, SteadyClock::time_point ship_deadline);
  // Builds the batch of one scrape (exposed for tests).
  Batch build_batch(uint64_t seq, int64_t now_ms, ScrapeReport report) const;
  // Runs until stop is requested.
  void run(StopSignal& stop);
  // After run(): tries once (options.shutdown_flush) to ship what is spooled; the rest stays.
  void flush_on_shutdown();

 private:
  void log_scrape_errors(const std::vector<SourceError>& errors);
  std::map<std::string, std::string> reported_errors_;  // source -> last logged message
  SourceSamples self_metrics(int64_t now_ms) const;

  AgentLoopOptions options_;
  const std::vector<std::unique_ptr<Source>>& sources_;
  Spool& spool_;
  SpoolDelivery& delivery_;
  WallClockMs wall_ms_;
  uint64_t scrape_errors_ = 0;
  uint64_t spool_write_errors_ = 0;
};

}  // namespace statherd::agent
