// statherd-agent configuration: YAML file (config/agent.yaml documents every key) overlaid by
// command-line flags. Flags win over YAML keys; a repeated list flag (--mmstats-glob,
// --counter-pattern) replaces the whole YAML list.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/sources/stat_file.h"
#include "common/etcd_config.h"
#include "common/state_dirs.h"
#include "common/token_file.h"
#include "common/yaml_util.h"

namespace statherd::agent {

inline constexpr uint64_t kDefaultSpoolMaxBytes = 256ull << 20;

struct AgentConfig {
  std::string server = "http://127.0.0.1:8470";  // http://host:port[/path]; https is refused
  std::string token_file;                        // required unless --once
  std::chrono::milliseconds interval{10'000};
  std::string host;      // empty: gethostname()
  std::string agent_id;  // empty: host
  // Empty: default_spool_dir() (filled by fill_defaults, which sets spool_dir_default).
  std::string spool_dir;
  bool spool_dir_default = false;
  uint64_t spool_max_bytes = kDefaultSpoolMaxBytes;
  std::vector<std::string> mmstats_globs;  // empty: the source's default ($MMSTATS_GLOB/$TMPDIR)
  // Labels matching one of these are counters. nullopt: the mmstats source's documented defaults.
  std::optional<std::vector<std::string>> counter_patterns;
  // statherd v2 files. Empty: the source's default ($STATHERD_DIR or $TMPDIR/statherd)/*.statherd.
  std::vector<std::string> v2_globs;
  std::chrono::milliseconds ship_timeout{5'000};  // deadline of one HTTP request to the server
  // Scales endpoints ("URL" or "APP=URL"); their dotted names matching these are counters.
  std::vector<std::string> scales_urls;
  std::vector<std::string> scales_counter_patterns;
  std::chrono::milliseconds scales_timeout{5'000};
  uint64_t scales_max_bytes = 8ull << 20;
  // Prometheus text endpoints ("URL" or "APP=URL").
  std::vector<std::string> prometheus_urls;
  std::chrono::milliseconds prometheus_timeout{5'000};
  uint64_t prometheus_max_bytes = 8ull << 20;
  // prometheus_client multiprocess directories ("DIR" or "APP=DIR"); empty: source off.
  std::vector<std::string> prom_multiproc_dirs;
  // Per-file cap of the three file sources: a larger file is refused unread (stat_file.h).
  uint64_t max_file_bytes = kDefaultMaxFileBytes;
  // Largest request body the agent sends: a batch over it is split before sending (the
  // server's default max_body_bytes is 64 MiB; a body far over the server's limit never gets
  // the server's 413 back). 64 KiB .. 1 GiB.
  uint64_t max_batch_bytes = uint64_t{16} << 20;
  // etcd: (endpoints, cluster): the agent routes each sample to the servers owning its shard
  // in the cluster's maps, one spool per server (agent/cluster_delivery.h); `server` unused.
  cluster::EtcdSettings etcd;
};

// What the command line asked for, before merging with the YAML file.
struct CommandLine {
  enum class Mode { Run, Once, CheckConfig, Status, Help, Version };
  Mode mode = Mode::Run;
  std::string config_file;
  std::optional<std::string> server, token_file, host, agent_id, spool_dir;
  std::optional<std::chrono::milliseconds> interval, ship_timeout;
  std::optional<uint64_t> spool_max_bytes, max_file_bytes;
  std::vector<std::string> mmstats_globs;      // empty: not given
  std::vector<std::string> counter_patterns;   // empty: not given
  std::vector<std::string> v2_globs;           // empty: not given
  std::vector<std::string> prom_multiproc_dirs;  // empty: not given
  std::vector<std::string> scales_urls, scales_counter_patterns, prometheus_urls;  // empty: not given
  bool verbose = false;
  bool json = false;  // --status --json: print the status file as JSON
};

// Parses argv (argv[0] is the program). Accepts "--flag value" and "--flag=value".
Result<CommandLine> parse_command_line(int argc, const char* const* argv);
std::string usage_text();

// Reads the YAML keys of `reader` into `config`; errors stay in reader.errors().
void read_agent_yaml(YamlReader& reader, AgentConfig& config);

// Overlays command-line values onto `config`.
void apply_command_line(const CommandLine& cli, AgentConfig& config);

// The spool dir when none is configured: <state dir>/spool, the state dir being
// $STATE_DIRECTORY (systemd), /var/lib/statherd-agent (root) or $XDG_STATE_HOME/statherd-agent
// (common/state_dirs.h). Empty when none applies.
std::string default_spool_dir(const EnvLookup& env, uid_t uid);

// Fills host (gethostname), agent_id (host) and spool_dir (default_spool_dir of this process's
// environment and uid) when empty.
void fill_defaults(AgentConfig& config);

// Checks that need no I/O: token file and spool dir present for `Run` (the server URL is
// checked where it is read: YAML with its position, or the --server flag).
// Returns human-readable problems (empty: fine).
std::vector<std::string> validate_agent_config(const AgentConfig& config, bool needs_server);

// Loads file (if any) + command line. Errors are "file:line:col: ..." lines, or plain lines for
// command-line problems.
struct LoadedConfig {
  AgentConfig config;
  std::vector<std::string> errors;
};
LoadedConfig load_agent_config(const CommandLine& cli);

// Reads the bearer token (common/token_file.h, shared with the server).
using ::statherd::read_token_file;

}  // namespace statherd::agent
