// The running agent's status file: <spool_dir>/status.json, rewritten atomically (temp file +
// rename, mode 0600) after every tick and reload, and once more, marked "stopped", on a clean
// exit. `statherd-agent --status` reads it to say whether the agent is alive and how it fares.
// JSON keys (stable; --status --json prints the file as it is):
//   version, state ("running"|"stopped"), pid, started_ms, config_file, host, agent_id,
//   server, interval_ms, last_tick_ms, written_ms,
//   sources: [{kind, describe, read, errors, first_error}]   (the last tick)
//   spool: {batches, bytes, dropped_batches},
//   quarantine: {dir, batches, bytes, quarantined_total, dropped_batches}
//     (batches/bytes: in the folder now; quarantined_total/dropped_batches: by this process),
//   ship: {last_result, last_detail, last_ms, acked_batches, failed_attempts, replayed_batches,
//          split_batches, unauthorized},
//   reloads: {ok, failed, last_result, last_message, last_ms},
//   servers: [{id, url, batches, bytes, dropped_batches, acked_batches, failed_attempts}]
//     (in a cluster: each server's own spool, agent/cluster_delivery.h; [] otherwise)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace statherd::agent {

inline constexpr const char* kStatusFileName = "status.json";

struct SourceStatus {
  std::string kind, describe;
  uint64_t read = 0, errors = 0;  // files/endpoints read, errors, in the last tick
  std::string first_error;        // "" when none
};

struct ServerSpoolStatus {
  std::string id, url;  // url "" while no member key was read for it
  uint64_t batches = 0, bytes = 0, dropped_batches = 0, acked_batches = 0, failed_attempts = 0;
};

struct AgentStatus {
  std::string state = "running";
  int64_t pid = 0;
  int64_t started_ms = 0;
  std::string config_file, host, agent_id, server;
  int64_t interval_ms = 0;
  int64_t last_tick_ms = 0;  // 0: no tick yet
  int64_t written_ms = 0;
  std::vector<SourceStatus> sources;
  uint64_t spool_batches = 0, spool_bytes = 0, spool_dropped_batches = 0;
  std::string quarantine_dir;
  uint64_t quarantine_batches = 0, quarantine_bytes = 0, quarantined_total = 0,
           quarantine_dropped = 0;
  // none | acked | retry-later | unauthorized | malformed | too-large
  std::string ship_last_result = "none";
  std::string ship_last_detail;
  int64_t ship_last_ms = 0;
  uint64_t acked_batches = 0, failed_attempts = 0, replayed_batches = 0;
  uint64_t split_batches = 0, unauthorized = 0;
  uint64_t reloads_ok = 0, reloads_failed = 0;
  std::string reload_last_result = "none";  // none | ok | failed
  std::string reload_last_message;
  int64_t reload_last_ms = 0;
  std::vector<ServerSpoolStatus> servers;
};

std::string status_to_json(const AgentStatus& s);
Result<AgentStatus> status_from_json(const std::string& text);

// Writes <dir>/status.json via <dir>/.tmp-status.json + rename (mode 0600; no fsync: the file
// is advisory and rewritten every tick).
Status write_status_file(const std::string& dir, const AgentStatus& s);
Result<AgentStatus> read_status_file(const std::string& dir);

// Alive: the state is "running", the pid exists and the last tick (or the start, before the
// first tick) is younger than three intervals. `why` says which check failed.
bool status_looks_alive(const AgentStatus& s, int64_t now_ms, bool pid_exists, std::string* why);
bool process_exists(int64_t pid);

// Human-readable, several lines.
std::string format_status(const AgentStatus& s, int64_t now_ms, bool alive, const std::string& why);

}  // namespace statherd::agent
