#include "agent/agent_config.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "agent/http_get.h"
#include "agent/shipper.h"
#include "agent/source_registry.h"
#include "agent/spool_dir.h"
#include "common/cli.h"

namespace statherd::agent {
namespace {

bool flag_takes_value(std::string_view flag) {
  static constexpr std::string_view kValued[] = {
      "--config",     "--server",          "--token-file",      "--interval",
      "--mmstats-glob", "--counter-pattern", "--host",          "--spool-dir",
      "--scales-url", "--scales-counter-pattern", "--prometheus-url",
      "--v2-glob", "--prom-multiproc-dir",
      "--agent-id",   "--spool-max-bytes", "--ship-timeout", "--max-file-bytes"};
  for (auto v : kValued)
    if (v == flag) return true;
  return false;
}

constexpr const char* kProgram = "statherd-agent";

Error bad_flag(const std::string& flag, const std::string& message, const std::string& allowed) {
  return cli::bad_value(kProgram, flag, message, allowed);
}

// Stores one "--flag value" pair; returns an error for an unknown flag or a bad value.
Status store_valued_flag(const std::string& flag, const std::string& value, CommandLine& cli) {
  if (flag == "--config") cli.config_file = value;
  else if (flag == "--server") {
    if (auto url = parse_server_url(value); !url) return bad_flag(flag, url.error().message,
                                                                  url.error().hint);
    cli.server = value;
  }
  else if (flag == "--token-file") cli.token_file = value;
  else if (flag == "--host") cli.host = value;
  else if (flag == "--agent-id") cli.agent_id = value;
  else if (flag == "--spool-dir") cli.spool_dir = value;
  else if (flag == "--mmstats-glob") cli.mmstats_globs.push_back(value);
  else if (flag == "--counter-pattern") cli.counter_patterns.push_back(value);
  else if (flag == "--v2-glob") cli.v2_globs.push_back(value);
  else if (flag == "--prom-multiproc-dir") cli.prom_multiproc_dirs.push_back(value);
  else if (flag == "--scales-url" || flag == "--prometheus-url") {
    if (auto url = parse_http_url(split_endpoint_spec(value).url); !url)
      return bad_flag(flag, url.error().message, url.error().hint);
    (flag == "--scales-url" ? cli.scales_urls : cli.prometheus_urls).push_back(value);
  }
  else if (flag == "--scales-counter-pattern") cli.scales_counter_patterns.push_back(value);
  else if (flag == "--interval" || flag == "--ship-timeout") {
    auto d = parse_duration(value);
    if (!d) return bad_flag(flag, d.error().message, "a duration like 10s, 500ms, 5m");
    (flag == "--interval" ? cli.interval : cli.ship_timeout) = *d;
  } else if (flag == "--spool-max-bytes" || flag == "--max-file-bytes") {
    auto b = parse_bytes(value);
    if (!b) return bad_flag(flag, b.error().message, "a size like 256MiB, 10MB, 4096");
    (flag == "--spool-max-bytes" ? cli.spool_max_bytes : cli.max_file_bytes) = *b;
  } else {
    return cli::unknown_option(kProgram, flag);
  }
  return Ok{};
}

Status store_switch(const std::string& flag, CommandLine& cli) {
  if (flag == "--once") cli.mode = CommandLine::Mode::Once;
  else if (flag == "--check-config") cli.mode = CommandLine::Mode::CheckConfig;
  else if (flag == "--status") cli.mode = CommandLine::Mode::Status;
  else if (flag == "--json") cli.json = true;
  else if (flag == "--help" || flag == "-h") cli.mode = CommandLine::Mode::Help;
  else if (flag == "--version") cli.mode = CommandLine::Mode::Version;
  else if (flag == "--verbose" || flag == "-v") cli.verbose = true;
  else return cli::unknown_option(kProgram, flag);
  return Ok{};
}

}  // namespace

Result<CommandLine> parse_command_line(int argc, const char* const* argv) {
  CommandLine cli;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string flag = arg, value;
    bool has_inline_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_inline_value = true;
    }
    if (flag_takes_value(flag)) {
      if (!has_inline_value) {
        if (i + 1 >= argc) return cli::needs_value(kProgram, flag);
        value = argv[++i];
      }
      if (auto st = store_valued_flag(flag, value, cli); !st) return st.error();
    } else {
      if (has_inline_value) return cli::takes_no_value(kProgram, flag);
      if (auto st = store_switch(flag, cli); !st) return st.error();
    }
  }
  return cli;
}

std::string usage_text() {
  return "usage: statherd-agent [--config FILE] [--server URL] [--token-file FILE] [--interval 10s]\n"
         "         [--mmstats-glob GLOB]... [--counter-pattern GLOB]... [--host NAME]\n"
         "         [--scales-url [APP=]URL]... [--scales-counter-pattern GLOB]...\n"
         "         [--prometheus-url [APP=]URL]...\n"
         "         [--v2-glob GLOB]...\n"
         "         [--prom-multiproc-dir [APP=]DIR]... [--max-file-bytes 64MiB]\n"
         "         [--spool-dir DIR] [--spool-max-bytes SIZE] [--agent-id ID]\n"
         "         [--ship-timeout 5s] [--verbose]\n"
         "       statherd-agent --once ...          read every source once, print JSON lines\n"
         "       statherd-agent --check-config ...  validate the configuration and exit\n"
         "       statherd-agent --status [--json] [--config FILE] [--spool-dir DIR]\n"
         "                                  is the agent alive? (exit 0 alive, 1 not, 2 bad config)\n"
         "       statherd-agent --help | --version\n"
         "\n"
         "Flags override the keys of the YAML file (documented in config/agent.yaml).\n"
         "--counter-pattern given on the command line replaces the default patterns.\n"
         "SIGHUP: reload the config file (flags still win); an invalid file changes nothing.\n"
         "SIGTERM/SIGINT: read the stat files once more, spool, try for 2 s to ship, exit 0;\n"
         "a second SIGTERM/SIGINT exits at once with 1 (unsent batches stay in the spool).\n";
}

namespace {

// The agent's scrape-and-ship interval may be below a second (samples carry millisecond
// timestamps; the server rolls up by its own whole-second interval), but not so short that the
// agent spins: 100ms to 1h.
constexpr const char* kAgentIntervalAllowed = "a duration from 100ms to 1h, e.g. 10s";
bool agent_interval_ok(std::chrono::milliseconds d) {
  return d >= std::chrono::milliseconds(100) && d <= std::chrono::hours(1);
}

}  // namespace

void read_agent_yaml(YamlReader& r, AgentConfig& c) {
  const YAML::Node root = r.root();
  if (!root || !root.IsMap()) return;
  std::set<std::string> keys{"server",    "token_file",      "interval",     "host",
                             "agent_id",  "spool_dir",       "spool_max_bytes",
                             "ship_timeout", "max_file_bytes", "max_batch_bytes", "etcd"};
  for (const SourceKind* kind : source_kinds()) keys.insert(kind->yaml_key);
  r.check_keys(root, keys);
  r.get_string(root, "server", c.server);
  r.get_string(root, "token_file", c.token_file);
  if (r.get_duration(root, "interval", c.interval) && !agent_interval_ok(c.interval))
    r.error_at(root["interval"], "interval", "out of range", kAgentIntervalAllowed);
  r.get_string(root, "host", c.host);
  r.get_string(root, "agent_id", c.agent_id);
  r.get_string(root, "spool_dir", c.spool_dir);
  r.get_bytes(root, "spool_max_bytes", c.spool_max_bytes);
  r.get_duration(root, "ship_timeout", c.ship_timeout);
  r.get_bytes(root, "max_file_bytes", c.max_file_bytes);
  r.get_bytes(root, "max_batch_bytes", c.max_batch_bytes, "", uint64_t{64} << 10,
              uint64_t{1} << 30);
  if (const YAML::Node server = root["server"]; server && server.IsScalar()) {
    if (auto url = parse_server_url(c.server); !url)
      r.error_at(server, "server", url.error().message, "http://host:port[/path]");
  }
  // A cluster (docs/CLUSTER.md "Agents"): endpoints and cluster, as the servers' section.
  cluster::read_etcd_section(r, root, c.etcd, /*server=*/false);
  for (const SourceKind* kind : source_kinds())  // each kind reads its own section
    if (YAML::Node section = r.get_map(root, kind->yaml_key); section && section.IsMap())
      kind->read_yaml(r, section, c);
}

void apply_command_line(const CommandLine& cli, AgentConfig& c) {
  if (cli.server) c.server = *cli.server;
  if (cli.token_file) c.token_file = *cli.token_file;
  if (cli.host) c.host = *cli.host;
  if (cli.agent_id) c.agent_id = *cli.agent_id;
  if (cli.spool_dir) c.spool_dir = *cli.spool_dir;
  if (cli.interval) c.interval = *cli.interval;
  if (cli.ship_timeout) c.ship_timeout = *cli.ship_timeout;
  if (cli.spool_max_bytes) c.spool_max_bytes = *cli.spool_max_bytes;
  if (cli.max_file_bytes) c.max_file_bytes = *cli.max_file_bytes;
  if (!cli.mmstats_globs.empty()) c.mmstats_globs = cli.mmstats_globs;
  if (!cli.counter_patterns.empty()) c.counter_patterns = cli.counter_patterns;
  if (!cli.scales_urls.empty()) c.scales_urls = cli.scales_urls;
  if (!cli.scales_counter_patterns.empty()) c.scales_counter_patterns = cli.scales_counter_patterns;
  if (!cli.prometheus_urls.empty()) c.prometheus_urls = cli.prometheus_urls;
  if (!cli.v2_globs.empty()) c.v2_globs = cli.v2_globs;
  if (!cli.prom_multiproc_dirs.empty()) c.prom_multiproc_dirs = cli.prom_multiproc_dirs;
}

std::string default_spool_dir(const EnvLookup& env, uid_t uid) {
  const std::string state = default_state_dir("statherd-agent", env, uid);
  return state.empty() ? state : state + "/spool";
}

void fill_defaults(AgentConfig& c) {
  if (c.spool_dir.empty()) {
    c.spool_dir = default_spool_dir(process_env(), ::geteuid());
    c.spool_dir_default = true;
  }
  if (c.host.empty()) {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) == 0) c.host = name;
    if (c.host.empty()) c.host = "localhost";
  }
  if (c.agent_id.empty()) c.agent_id = c.host;
}

std::vector<std::string> validate_agent_config(const AgentConfig& c, bool needs_server) {
  std::vector<std::string> problems;
  if (needs_server) {
    if (c.token_file.empty()) problems.push_back(read_token_file("").error().to_string());
    if (c.spool_dir.empty() && c.spool_dir_default)
      problems.push_back("spool_dir: none configured and no default (neither $STATE_DIRECTORY, "
                         "root, $XDG_STATE_HOME nor $HOME)\nhint: pass --spool-dir DIR (a "
                         "directory the agent owns; it is created with mode 0700)");
  }
  if (!agent_interval_ok(c.interval))
    problems.push_back("interval: " + std::to_string(c.interval.count()) +
                       "ms is out of range\nhint: use " + kAgentIntervalAllowed);
  if (c.spool_max_bytes < 4096)
    problems.push_back("spool_max_bytes: " + std::to_string(c.spool_max_bytes) +
                       " is too small\nhint: use at least 4KiB, e.g. 256MiB");
  if (c.max_file_bytes < kMinMaxFileBytes)
    problems.push_back("max_file_bytes: " + std::to_string(c.max_file_bytes) +
                       " is too small\nhint: use at least 4KiB; the default is 64MiB");
  return problems;
}

LoadedConfig load_agent_config(const CommandLine& cli) {
  LoadedConfig loaded;
  bool needs_server = cli.mode == CommandLine::Mode::Run || cli.mode == CommandLine::Mode::CheckConfig;
  if (!cli.config_file.empty()) {
    YamlReader reader(cli.config_file);
    read_agent_yaml(reader, loaded.config);
    // An unreadable token file is reported at its key (unless --token-file overrides it).
    const std::string& yaml_token = loaded.config.token_file;
    if (needs_server && !cli.token_file && !yaml_token.empty()) {
      if (auto token = read_token_file(yaml_token); !token)
        reader.error_at(reader.root()["token_file"], "token_file", token.error().message,
                        "a readable, non-empty file holding the server's token");
    }
    // As the server: one error with every file:line:col problem and one hint, and nothing
    // more (the values it read are not checked again: no second, unlocated report of a key,
    // no "no token file configured" for a file that could not be read).
    if (!reader.errors().empty()) {
      loaded.errors.push_back(
          cli::config_file_error(reader.errors(), "config/agent.yaml").to_string());
      return loaded;
    }
  }
  apply_command_line(cli, loaded.config);
  fill_defaults(loaded.config);
  if (needs_server && cli.token_file) {
    if (auto token = read_token_file(*cli.token_file); !token)
      loaded.errors.push_back("--token-file: " + token.error().to_string());
  }
  for (auto& p : validate_agent_config(loaded.config, needs_server))
    loaded.errors.push_back(std::move(p));
  // The directory itself, as Spool::open will check it at start (here: without creating it).
  if (needs_server && !loaded.config.spool_dir.empty()) {
    // The default's parents (~/.local/state, /var/lib/statherd-agent) may not exist yet.
    Status parents = loaded.config.spool_dir_default
                         ? create_parent_dirs(loaded.config.spool_dir) : Status(Ok{});
    if (!parents)
      loaded.errors.push_back("spool_dir (default " + loaded.config.spool_dir + "): " +
                              parents.error().to_string());
    else if (Status dir = check_spool_dir(loaded.config.spool_dir); !dir)
      loaded.errors.push_back(dir.error().to_string());
  }
  return loaded;
}

}  // namespace statherd::agent
