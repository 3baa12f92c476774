// The agent's own metrics, shipped in every batch as one more source (app "self", every name
// prefixed "agent."), so the server rolls them up like any other source and they land under
// <prefix>.self.agent.* and <prefix>.self.hosts.<host>.agent.* (the server's own are
// server.*). The names are a stable interface: docs/OPERATIONS.md lists each one with its
// kind, meaning and what to alert on. Counters are cumulative since the agent started.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "agent/delivery.h"
#include "common/sample.h"

namespace statherd::agent {

inline constexpr const char* kSelfApp = "self";
inline constexpr const char* kSelfPath = "statherd-agent";

// What the loop counts itself (delivery and spool keep their own numbers).
struct AgentSelfCounters {
  std::map<std::string, uint64_t> sources_read;   // source kind -> files/endpoints read
  std::map<std::string, uint64_t> scrape_errors;  // source kind -> errors reported
  uint64_t samples_read = 0;
  uint64_t batches_written = 0;     // batches put in the spool
  uint64_t spool_write_errors = 0;  // failed attempts to persist a batch (or its seq)
  uint64_t held_batches = 0;        // gauge: batches held in memory, the spool refusing them
  uint64_t held_dropped = 0;        // held batches dropped beyond kMaxHeldBatches
  uint64_t replayed_batches = 0;    // acked after waiting in the spool (outage or restart)
  uint64_t reloads_ok = 0, reloads_failed = 0;
  double scrape_ms = 0;  // duration of the last scrape of all sources

  // Makes `kind` appear (with 0) in the per-kind counters, so a configured source kind is
  // reported before its first read or error.
  void know_kind(const std::string& kind);
};

struct SpoolGauges {
  uint64_t bytes = 0, batches = 0, dropped_batches = 0;
  uint64_t quarantine_batches = 0, quarantine_bytes = 0;  // in <spool_dir>/quarantine now
  uint64_t quarantine_dropped = 0;  // quarantined batches removed beyond its bound
};

// The self-metrics source of one batch: identity (host, "self", our pid, our start time,
// "statherd-agent"), samples stamped now_ms.
SourceSamples agent_self_metrics(const std::string& host, int64_t pid, int64_t started_ms,
                                 int64_t now_ms, const AgentSelfCounters& counters,
                                 const DeliveryStats& delivery, const SpoolGauges& spool);

}  // namespace statherd::agent
