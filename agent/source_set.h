// The daemon's sources, built from an AgentConfig, and rebuilt on a reload without losing or
// double counting an increment.
//
// Counter hazard on reload: the server counts a source's counters whole on first sighting only
// when the batch says the source is `fresh`. A source object that is rebuilt starts with an
// empty "seen" table, so its first scrape must not call already-known files fresh: it is built
// with fresh_if_started_after_ms = the last scan time, exactly as at an agent start (files of
// processes started since the last scan are fresh, older ones are baselined or, when the server
// already knows them, continue their deltas). A source whose options did not change is kept as
// it is (same object: its mapped files, its per-file "seen" state, and prom_multiproc's totals
// of deleted files, which live only in memory).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent_config.h"
#include "agent/sources/source.h"

namespace statherd::agent {

// The sources of every kind of the registry (agent/source_registry.h) that `c` turns on.
class SourceSet {
 public:
  // Every source of `c`; files of processes started after last_scan_ms (0: none) are fresh.
  SourceSet(const AgentConfig& c, int64_t last_scan_ms);

  const std::vector<std::unique_ptr<Source>>& sources() const { return sources_; }

  // Keeps each source whose options are unchanged, builds the changed and new ones with
  // last_scan_ms, drops the ones no longer configured. Returns one line per change, e.g.
  // "mmstats_v1 rebuilt (options changed)"; empty when nothing changed.
  std::vector<std::string> update(const AgentConfig& c, int64_t last_scan_ms);

 private:
  std::vector<std::unique_ptr<Source>> sources_;
  std::vector<std::string> kinds_, fingerprints_;  // parallel to sources_
};

}  // namespace statherd::agent
