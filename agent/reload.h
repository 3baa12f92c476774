// SIGHUP: re-read the configuration (file + the original command line, so flags still win)
// and apply what can change while running. Runs in the loop thread between ticks.
//
// Applied at once:  sources (mmstats globs and counter patterns, v2 globs, prom_multiproc dirs,
//                   Scales/Prometheus URLs and their options, host), server URL, token file,
//                   ship_timeout, interval (from the next tick on).
// Need a restart:   spool_dir, spool_max_bytes, agent_id (the spool and its seqs are the
//                   server's dedup key; they are never touched by a reload). A change is logged
//                   as "needs a restart, keeping X" and does not fail the reload.
// A config with errors changes nothing: every error is logged (file:line:col) and the agent
// keeps running as it was.
// No increment is lost or counted twice: the spool is untouched, and sources follow the rules
// in source_set.h (unchanged ones kept as they are, changed ones rebuilt as at an agent start).
// A changed host is a new source identity for the server: the new series start from a
// baseline, and the increments of the one interval across the change are not counted.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent_config.h"
#include "agent/agent_loop.h"
#include "agent/shipper.h"
#include "agent/source_set.h"

namespace statherd::agent {

// The HTTP sender, replaceable on reload (server URL, token, timeout), remembering the last
// result for the status file. Used by the loop thread only.
class ReloadableSender : public BatchSender {
 public:
  using WallClockMs = std::function<int64_t()>;
  ReloadableSender(HttpSenderOptions options, WallClockMs wall_ms);
  ShipResult send(uint64_t seq, std::string_view encoded_batch) override;
  void reconfigure(HttpSenderOptions options);
  void set_timeout(std::chrono::milliseconds t);
  const HttpSenderOptions& options() const { return options_; }
  const ShipResult* last_result() const { return has_last_ ? &last_ : nullptr; }
  int64_t last_ms() const { return last_ms_; }

 private:
  HttpSenderOptions options_;
  std::unique_ptr<HttpBatchSender> sender_;
  WallClockMs wall_ms_;
  ShipResult last_;
  bool has_last_ = false;
  int64_t last_ms_ = 0;
};

// Settings that only take effect after a restart: each one that differs is set back in `next`
// to its running value and reported as "KEY changed to NEW: needs a restart, keeping OLD".
std::vector<std::string> keep_restart_only_settings(const AgentConfig& running, AgentConfig& next);

// What the daemon's reload works on.
struct ReloadTargets {
  const CommandLine& cli;  // the original command line (its flags win over the file)
  AgentConfig& running;    // updated to what is in effect after the reload
  SourceSet& sources;
  ReloadableSender& sender;
  AgentLoop& loop;
};

// One reload; last_scan_ms is the time of the last scrape (rebuilt sources count files of
// processes started after it as fresh). Logs errors and settings kept for a restart; the
// summary ("reloaded: N sources; ...") is the outcome's message, logged by the loop after the
// tick that follows a reload.
ReloadOutcome reload_agent(const ReloadTargets& t, int64_t last_scan_ms);

}  // namespace statherd::agent
