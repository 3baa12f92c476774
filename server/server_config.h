// statherd-server configuration: YAML file (config/server.yaml documents every key) and the
// command line; a flag overrides the YAML key it names.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/etcd_config.h"
#include "common/result.h"
#include "common/token_file.h"
#include "server/engine.h"
#include "server/graphite_rules.h"
#include "server/read_limits.h"

namespace statherd::server {

struct ServerConfig {
  std::string config_file;                       // --config
  std::string listen = "127.0.0.1:8470";         // listen
  std::string token_file;                        // token_file (required)
  std::chrono::milliseconds interval{10'000};    // interval
  std::string state_dir;                         // state_dir (WAL); empty: no WAL
  // Neither the YAML key nor --state-dir given: parse_server_command_line sets state_dir to
  // common/state_dirs.h's default ($STATE_DIRECTORY, /var/lib/statherd as root, else XDG).
  bool state_dir_set = false;
  std::chrono::milliseconds late_window{600'000};
  std::chrono::milliseconds snapshot_every{300'000};  // snapshot_every [--snapshot-every]
  std::chrono::milliseconds idle_timeout{300'000};
  bool level_process = false, level_host = true, level_app = true;  // levels.*
  unsigned threads = 0;  // threads [--threads]: the rollup's; 0 = auto (the machine's cores)
  uint64_t max_body_bytes = 64ull << 20;         // limits.* (ingest)
  uint64_t max_read_body_bytes = 64 * 1024;      // every other route
  uint64_t max_connections = 1024;
  std::chrono::milliseconds connection_idle_timeout{30'000};
  ReadLimits reads;                              // reads.*
  uint64_t max_series_total = 4'000'000;
  uint64_t max_series_per_source = 10'000;
  uint64_t max_samples_per_batch = 1'000'000;    // more: the batch is refused (400), not applied
  std::string memory_retention;  // memory.* (server/retention.h); empty: the interval's defaults
  uint64_t memory_max_paths = 1'000'000;
  std::string graphite_address;                  // graphite.*; empty: no graphite sink
  std::string graphite_prefix = "statherd";
  uint64_t graphite_queue_max_lines = 1'000'000;
  uint64_t graphite_max_new_series_per_minute = 0;
  std::string remote_write_url;                  // remote_write.*; empty: no remote_write sink
  uint64_t remote_write_queue_max_samples = 500'000;
  uint64_t remote_write_batch_max_samples = 2'000;
  std::chrono::milliseconds remote_write_timeout{10'000};
  bool graphite_tags = false;                    // graphite.tags [--graphite-tags]
  GraphiteRules graphite_rules;                  // graphite.rules (compiled at load)
  // etcd.* (docs/CLUSTER.md): absent, one server as before. parse_server_command_line fills
  // etcd.id with the host name when not given; the advertise URL is settled once the server
  // listens (its port may be 0 in tests).
  cluster::EtcdSettings etcd;
};

// What the command line asks for besides configuration.
struct ServerCommand {
  ServerConfig config;
  bool check_config = false;
  bool help = false;
  bool version = false;
};

std::string server_usage();

// Applies the YAML file at `path` onto `config`. Errors: one per line, "file:line:col: key: ...".
Status load_server_config_file(const std::string& path, ServerConfig& config);
// Same, from text (tests).
Status load_server_config_text(const std::string& file, const std::string& text,
                               ServerConfig& config);

// Parses argv: loads --config first, then applies every other flag over it, then validates.
Result<ServerCommand> parse_server_command_line(const std::vector<std::string>& args);

// Cross-field checks (listen parses, graphite address parses or is "-", ...).
Status validate_server_config(const ServerConfig& config);

// Reads the shared token (common/token_file.h, shared with the agent).
using ::statherd::read_token_file;

EngineOptions engine_options_from(const ServerConfig& config);

// `threads:` / --threads: "auto" (0) or 1..256; an error says what is allowed.
Result<unsigned> parse_threads(const std::string& text);

}  // namespace statherd::server
