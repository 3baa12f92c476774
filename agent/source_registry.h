// The registry of source kinds, modelled on Telegraf's input plugins: each kind describes
// itself in its own file (agent/sources/<kind>_kind.cpp: its YAML section, whether a config
// turns it on, the fingerprint of its options, how to build it), and
// agent/sources/all_kinds.cpp lists the kinds, one line each (Telegraf's plugins/inputs/all).
// The daemon's SourceSet, --once, the YAML reader and the agent loop walk this list and never
// name a kind. Adding a kind: its Source, its <kind>_kind.cpp, one line in all_kinds.cpp, and
// its fields in AgentConfig (and a flag in agent_config.cpp if scripts need one).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent_config.h"
#include "agent/sources/source.h"
#include "common/yaml_util.h"

namespace statherd::agent {

struct SourceKind {
  const char* name;      // Source::kind(): "mmstats_v1"; self-metric tag and status name
  const char* yaml_key;  // its section of agent.yaml, e.g. "mmstats"
  // Reads the section (a YAML map) into c; errors stay in r.
  void (*read_yaml)(YamlReader& r, const YAML::Node& section, AgentConfig& c);
  // Whether c turns the kind on (file kinds with a default glob are always on).
  bool (*configured)(const AgentConfig& c);
  // Every option that shapes the source, so that equal fingerprints mean a running source can
  // be kept across a reload (see source_set.h).
  std::string (*fingerprint)(const AgentConfig& c);
  // The source for c. last_scan_ms: files of processes started after it are fresh (0: none).
  // one_shot: --once (nothing kept between scrapes, /proc not read).
  std::unique_ptr<Source> (*build)(const AgentConfig& c, int64_t last_scan_ms, bool one_shot);
};

// Every kind, in the order sources are scraped (agent/sources/all_kinds.cpp).
const std::vector<const SourceKind*>& source_kinds();

// Helpers for the kinds' fingerprints: items joined with separators no glob, URL or number holds.
std::string fingerprint_join(const std::vector<std::string>& items);
std::string fingerprint_of(std::initializer_list<std::string> parts);

// The `scales:` / `prometheus:` section shape: {urls, timeout, max_bytes[, counter_patterns]};
// each URL is checked ("URL" or "APP=URL").
void read_http_source_section(YamlReader& r, const YAML::Node& section, const std::string& key,
                              std::vector<std::string>& urls, std::chrono::milliseconds& timeout,
                              uint64_t& max_bytes, std::vector<std::string>* counter_patterns);

}  // namespace statherd::agent
