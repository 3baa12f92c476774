#include "server/server_config.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "common/cli.h"
#include "common/state_dirs.h"
#include "common/yaml_util.h"
#include "server/fork_join_pool.h"
#include "server/retention.h"
#include "server/sinks/remote_write_http.h"
#include "server/state_dir_check.h"

namespace statherd::server {

namespace {

constexpr const char* kProgram = "statherd-server";
constexpr int64_t kMaxCount = int64_t{1} << 40;
// limits.max_body_bytes: a batch of one sample needs a few dozen bytes; 0 would refuse every
// batch, and over 1 GiB one request could hold a gigabyte of the server's memory.
constexpr uint64_t kMinBodyBytes = 1024, kMaxBodyBytes = uint64_t{1} << 30;

void read_levels(YamlReader& r, const YAML::Node& root, ServerConfig& c) {
  YAML::Node n = r.get_map(root, "levels");
  if (!n) return;
  r.get_bool(n, "process", c.level_process, "levels");
  r.get_bool(n, "host", c.level_host, "levels");
  r.get_bool(n, "app", c.level_app, "levels");
  r.check_keys(n, {"process", "host", "app"}, "levels");
}

void read_count(YamlReader& r, const YAML::Node& n, const std::string& key, uint64_t& out,
                int64_t min, const std::string& prefix) {
  int64_t v = static_cast<int64_t>(out);
  if (r.get_int(n, key, v, min, kMaxCount, prefix)) out = static_cast<uint64_t>(v);
}

void read_limits(YamlReader& r, const YAML::Node& root, ServerConfig& c) {
  YAML::Node n = r.get_map(root, "limits");
  if (!n) return;
  r.get_bytes(n, "max_body_bytes", c.max_body_bytes, "limits", kMinBodyBytes, kMaxBodyBytes);
  r.get_bytes(n, "max_read_body_bytes", c.max_read_body_bytes, "limits", kMinBodyBytes,
              kMaxBodyBytes);
  read_count(r, n, "max_series_total", c.max_series_total, 1, "limits");
  read_count(r, n, "max_series_per_source", c.max_series_per_source, 1, "limits");
  read_count(r, n, "max_connections", c.max_connections, 1, "limits");
  // Under a second, a client is cut off between connect and its first request.
  if (r.get_duration(n, "connection_idle_timeout", c.connection_idle_timeout, "limits") &&
      c.connection_idle_timeout < std::chrono::seconds(1))
    r.error_at(n["connection_idle_timeout"], "limits.connection_idle_timeout",
               "under 1s: clients would be disconnected before their first request",
               "1s or more (default 30s)");
  read_count(r, n, "max_samples_per_batch", c.max_samples_per_batch, 1, "limits");
  r.check_keys(n, {"max_body_bytes", "max_read_body_bytes", "max_series_total",
                   "max_series_per_source", "max_connections", "connection_idle_timeout",
                   "max_samples_per_batch"},
               "limits");
}

void read_size(YamlReader& r, const YAML::Node& n, const std::string& key, size_t& out) {
  uint64_t v = out;
  read_count(r, n, key, v, 1, "reads");
  out = static_cast<size_t>(v);
}

// reads.*: the bounds of one read request (server/read_limits.h).
void read_reads(YamlReader& r, const YAML::Node& root, ServerConfig& c) {
  YAML::Node n = r.get_map(root, "reads");
  if (!n) return;
  ReadLimits& l = c.reads;
  read_size(r, n, "max_targets", l.max_targets);
  uint64_t pattern_bytes = l.max_pattern_bytes;
  r.get_bytes(n, "max_pattern_bytes", pattern_bytes, "reads");
  l.max_pattern_bytes = static_cast<size_t>(pattern_bytes);
  read_size(r, n, "max_brace_depth", l.max_brace_depth);
  read_size(r, n, "max_alternatives", l.max_alternatives);
  read_size(r, n, "max_paths", l.max_paths);
  read_count(r, n, "max_match_steps", l.max_match_steps, 1, "reads");
  read_count(r, n, "max_points", l.max_points, 1, "reads");
  read_count(r, n, "max_points_read", l.max_points_read, 1, "reads");
  r.get_bytes(n, "max_answer_bytes", l.max_answer_bytes, "reads");
  r.check_keys(n, {"max_targets", "max_pattern_bytes", "max_brace_depth", "max_alternatives",
                   "max_paths", "max_match_steps", "max_points", "max_points_read",
                   "max_answer_bytes"},
               "reads");
}

void read_memory(YamlReader& r, const YAML::Node& root, ServerConfig& c) {
  YAML::Node n = r.get_map(root, "memory");
  if (!n) return;
  // Graphite's retention syntax, checked against the interval read so far (and again in
  // validate_server_config() against the final one).
  if (r.get_string(n, "retention", c.memory_retention, "memory")) {
    auto tiers = resolve_retention(c.memory_retention, c.interval.count() / 1000);
    if (!tiers) r.error_at(n["retention"], "memory.retention", tiers.error().message,
                           tiers.error().hint);
  }
  read_count(r, n, "max_paths", c.memory_max_paths, 1, "memory");
  r.check_keys(n, {"retention", "max_paths"}, "memory");
}

// graphite.rules: a sequence of one-key maps {allow|forbid|prune: RE}, each RE compiled here
// once; a bad RE is an error at its own file:line:col.
void read_graphite_rules(YamlReader& r, const YAML::Node& n, ServerConfig& c) {
  YAML::Node list = n["rules"];
  if (!list) return;
  const std::string allowed = "a list of {allow: RE}, {forbid: RE} or {prune: RE}";
  if (!list.IsSequence()) return r.error_at(list, "graphite.rules", "not a list", allowed);
  std::vector<GraphiteRule> rules;
  for (const YAML::Node& item : list) {
    if (!item.IsMap() || item.size() != 1 || !item.begin()->second.IsScalar()) {
      r.error_at(item, "graphite.rules", "not a one-key map", allowed);
      continue;
    }
    std::string kind = item.begin()->first.Scalar();
    auto rule = make_graphite_rule(kind, item.begin()->second.Scalar());
    if (!rule) {
      r.error_at(item.begin()->second, "graphite.rules." + kind, rule.error().message,
                 rule.error().hint);
      continue;
    }
    rules.push_back(std::move(*rule));
  }
  c.graphite_rules = GraphiteRules(std::move(rules));
}

void read_graphite(YamlReader& r, const YAML::Node& root, ServerConfig& c) {
  YAML::Node n = r.get_map(root, "graphite");
  if (!n) return;
  if (r.get_string(n, "address", c.graphite_address, "graphite") && c.graphite_address != "-" &&
      !c.graphite_address.empty() && !parse_host_port(c.graphite_address)) {
    r.error_at(n["address"], "graphite.address", "not a HOST:PORT", "HOST:PORT, or - for stdout");
  }
  r.get_string(n, "prefix", c.graphite_prefix, "graphite");
  read_count(r, n, "queue_max_lines", c.graphite_queue_max_lines, 1, "graphite");
  read_count(r, n, "max_new_series_per_minute", c.graphite_max_new_series_per_minute, 0,
             "graphite");
  r.get_bool(n, "tags", c.graphite_tags, "graphite");
  read_graphite_rules(r, n, c);
  r.check_keys(n, {"address", "prefix", "queue_max_lines", "max_new_series_per_minute", "tags",
                   "rules"},
               "graphite");
}

void read_remote_write(YamlReader& r, const YAML::Node& root, ServerConfig& c) {
  YAML::Node n = r.get_map(root, "remote_write");
  if (!n) return;
  if (r.get_string(n, "url", c.remote_write_url, "remote_write") && !c.remote_write_url.empty())
    if (auto u = parse_remote_write_url(c.remote_write_url); !u)
      r.error_at(n["url"], "remote_write.url", u.error().message,
                 "e.g. http://127.0.0.1:9090/api/v1/write");
  read_count(r, n, "queue_max_samples", c.remote_write_queue_max_samples, 1, "remote_write");
  read_count(r, n, "batch_max_samples", c.remote_write_batch_max_samples, 1, "remote_write");
  r.get_duration(n, "timeout", c.remote_write_timeout, "remote_write");
  r.check_keys(n, {"url", "queue_max_samples", "batch_max_samples", "timeout"}, "remote_write");
}

void read_threads(YamlReader& r, const YAML::Node& root, ServerConfig& c) {
  std::string text;
  if (!r.get_string(root, "threads", text)) return;
  if (auto t = parse_threads(text); !t)
    r.error_at(root["threads"], "threads", t.error().message, t.error().hint);
  else
    c.threads = *t;
}

// token_file given in the YAML but unreadable or empty: reported at the key's position, as the
// server could not start with it (--check-config says so before a deploy).
void check_token_file(YamlReader& r, const ServerConfig& c) {
  if (c.token_file.empty()) return;
  if (auto token = read_token_file(c.token_file); !token)
    r.error_at(r.root()["token_file"], "token_file", token.error().message,
               "a readable, non-empty file holding the shared token (root:statherd, mode 0640)");
}

// check_token: also check that token_file is readable (off when --token-file overrides it).
Status apply_yaml(YamlReader& r, ServerConfig& c, bool check_token = false) {
  YAML::Node root = r.root();
  if (root && root.IsMap()) {
    if (r.get_string(root, "listen", c.listen) && !parse_host_port(c.listen)) {
      r.error_at(root["listen"], "listen", "not a HOST:PORT", "e.g. 127.0.0.1:8470");
    }
    if (r.get_string(root, "token_file", c.token_file) && check_token) check_token_file(r, c);
    r.get_interval(root, "interval", c.interval);
    if (r.get_string(root, "state_dir", c.state_dir)) {
      c.state_dir_set = true;
      if (Status s = check_state_dir(c.state_dir); !s)
        r.error_at(root["state_dir"], "state_dir", s.error().message, s.error().hint);
    }
    r.get_duration(root, "late_window", c.late_window);
    r.get_duration(root, "snapshot_every", c.snapshot_every);
    r.get_duration(root, "idle_timeout", c.idle_timeout);
    read_levels(r, root, c);
    read_threads(r, root, c);
    read_limits(r, root, c);
    read_reads(r, root, c);
    read_memory(r, root, c);
    read_graphite(r, root, c);
    read_remote_write(r, root, c);
    cluster::read_etcd_section(r, root, c.etcd, /*server=*/true);
    r.check_keys(root, {"listen", "token_file", "interval", "state_dir", "late_window",
                        "snapshot_every", "idle_timeout", "levels", "threads", "limits", "reads",
                        "memory", "graphite", "remote_write", "etcd"});
  }
  if (r.errors().empty()) return Ok{};
  return cli::config_file_error(r.errors(), "config/server.yaml");
}

// One command-line flag: how it applies its value (nullptr value for a boolean flag).
using Apply = std::function<Status(ServerCommand&, const std::string&)>;

Status set_duration(std::chrono::milliseconds& out, const std::string& flag, const std::string& v) {
  auto d = parse_duration(v);
  if (!d) return make_error(flag + ": " + d.error().message, "use a duration like 10s, 5m, 1h");
  out = *d;
  return Ok{};
}

Status set_bool(bool& out, const std::string& flag, const std::string& v) {
  if (v.empty() || v == "true" || v == "1" || v == "yes") out = true;
  else if (v == "false" || v == "0" || v == "no") out = false;
  else return make_error(flag + ": not a boolean: " + v, "use " + flag + " or " + flag + "=false");
  return Ok{};
}

const std::map<std::string, Apply>& value_flags() {
  static const std::map<std::string, Apply> flags = {
      {"--listen", [](ServerCommand& c, const std::string& v) -> Status {
         c.config.listen = v; return Ok{}; }},
      {"--token-file", [](ServerCommand& c, const std::string& v) -> Status {
         c.config.token_file = v; return Ok{}; }},
      {"--state-dir", [](ServerCommand& c, const std::string& v) -> Status {
         c.config.state_dir = v; c.config.state_dir_set = true; return Ok{}; }},
      {"--graphite", [](ServerCommand& c, const std::string& v) -> Status {
         c.config.graphite_address = v; return Ok{}; }},
      {"--graphite-prefix", [](ServerCommand& c, const std::string& v) -> Status {
         c.config.graphite_prefix = v; return Ok{}; }},
      {"--remote-write", [](ServerCommand& c, const std::string& v) -> Status {
         c.config.remote_write_url = v; return Ok{}; }},
      {"--interval", [](ServerCommand& c, const std::string& v) -> Status {
         auto d = parse_interval(v);
         if (!d) return make_error("--interval: " + d.error().message, d.error().hint);
         c.config.interval = *d;
         return Ok{}; }},
      {"--late-window", [](ServerCommand& c, const std::string& v) {
         return set_duration(c.config.late_window, "--late-window", v); }},
      {"--snapshot-every", [](ServerCommand& c, const std::string& v) {
         return set_duration(c.config.snapshot_every, "--snapshot-every", v); }},
      {"--idle-timeout", [](ServerCommand& c, const std::string& v) {
         return set_duration(c.config.idle_timeout, "--idle-timeout", v); }},
      {"--threads", [](ServerCommand& c, const std::string& v) -> Status {
         auto t = parse_threads(v);
         if (!t) return make_error("--threads: " + t.error().message, t.error().hint);
         c.config.threads = *t;
         return Ok{}; }},
      {"--retention", [](ServerCommand& c, const std::string& v) -> Status {
         if (auto tiers = parse_retention(v); !tiers)
           return make_error("--retention: " + tiers.error().message, tiers.error().hint);
         c.config.memory_retention = v;
         return Ok{}; }},
  };
  return flags;
}

const std::map<std::string, std::function<bool&(ServerCommand&)>>& bool_flags() {
  static const std::map<std::string, std::function<bool&(ServerCommand&)>> flags = {
      {"--check-config", [](ServerCommand& c) -> bool& { return c.check_config; }},
      {"--help", [](ServerCommand& c) -> bool& { return c.help; }},
      {"-h", [](ServerCommand& c) -> bool& { return c.help; }},
      {"--version", [](ServerCommand& c) -> bool& { return c.version; }},
      {"--level-process", [](ServerCommand& c) -> bool& { return c.config.level_process; }},
      {"--graphite-tags", [](ServerCommand& c) -> bool& { return c.config.graphite_tags; }},
  };
  return flags;
}

struct Flag {
  std::string name, value;
  bool has_value = false;
};

// Splits argv into flags; "--x=v" and "--x v" both work for value flags.
Result<std::vector<Flag>> split_flags(const std::vector<std::string>& args) {
  std::vector<Flag> out;
  for (size_t i = 0; i < args.size(); ++i) {
    Flag f;
    f.name = args[i];
    if (auto eq = f.name.find('='); eq != std::string::npos && f.name.starts_with("--")) {
      f.value = f.name.substr(eq + 1);
      f.name.resize(eq);
      f.has_value = true;
    }
    bool takes_value = value_flags().count(f.name) || f.name == "--config";
    if (!takes_value && !bool_flags().count(f.name)) return cli::unknown_option(kProgram, args[i]);
    if (takes_value && !f.has_value) {
      if (i + 1 >= args.size()) return cli::needs_value(kProgram, f.name);
      f.value = args[++i];
      f.has_value = true;
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

std::string server_usage() {
  return "usage: statherd-server [--config FILE] [--listen 127.0.0.1:8470] [--token-file FILE]\n"
         "                       [--interval 10s] [--state-dir DIR] [--graphite HOST:PORT | -]\n"
         "                       [--graphite-prefix statherd] [--graphite-tags]\n"
         "                       [--late-window 10m] [--snapshot-every 5m]\n"
         "                       [--idle-timeout 5m] [--retention 10s:6h,5m:7d] [--level-process]\n"
         "                       [--threads auto|N]\n"
         "                       [--remote-write http://HOST:9090/api/v1/write]\n"
         "                       [--check-config] [--help] [--version]\n"
         "Flags override the keys of the YAML file; config/server.yaml documents every key.\n"
         "--graphite - writes the Graphite plaintext lines to stdout.\n";
}

Status load_server_config_text(const std::string& file, const std::string& text,
                               ServerConfig& config) {
  YamlReader reader(file, text);
  return apply_yaml(reader, config);
}

Status load_server_config_file(const std::string& path, ServerConfig& config) {
  YamlReader reader(path);
  return apply_yaml(reader, config);
}

Status validate_server_config(const ServerConfig& c) {
  if (auto hp = parse_host_port(c.listen); !hp) {
    return make_error("listen address '" + c.listen + "': " + hp.error().message,
                      "use HOST:PORT, e.g. 127.0.0.1:8470");
  }
  if (!c.graphite_address.empty() && c.graphite_address != "-") {
    if (auto hp = parse_host_port(c.graphite_address); !hp) {
      return make_error("graphite address '" + c.graphite_address + "': " + hp.error().message,
                        "use HOST:PORT (carbon's plaintext port, usually 2003) or - for stdout");
    }
  }
  if (!c.remote_write_url.empty()) {
    if (auto u = parse_remote_write_url(c.remote_write_url); !u) return u.error();
  }
  if (auto d = parse_interval(std::to_string(c.interval.count()) + "ms"); !d)
    return make_error("interval: " + d.error().message, d.error().hint);
  if (auto tiers = resolve_retention(c.memory_retention, c.interval.count() / 1000); !tiers)
    return make_error("--retention / memory.retention: " + tiers.error().message,
                      tiers.error().hint);
  if (c.max_body_bytes < kMinBodyBytes || c.max_body_bytes > kMaxBodyBytes)
    return make_error(
        "limits.max_body_bytes " + std::to_string(c.max_body_bytes) + " is out of range",
        "use 1KiB to 1GiB (default 64MiB)");
  if (Status s = check_state_dir(c.state_dir); !s) return s;
  return Ok{};
}

Result<ServerCommand> parse_server_command_line(const std::vector<std::string>& args) {
  auto flags = split_flags(args);
  if (!flags) return flags.error();
  ServerCommand cmd;
  const bool token_flag = std::any_of(flags->begin(), flags->end(),
                                      [](const Flag& f) { return f.name == "--token-file"; });
  for (const Flag& f : *flags) {
    if (f.name != "--config") continue;
    cmd.config.config_file = f.value;
    YamlReader reader(f.value);
    if (Status s = apply_yaml(reader, cmd.config, !token_flag); !s) return s.error();
  }
  for (const Flag& f : *flags) {
    if (f.name == "--config") continue;
    if (auto it = value_flags().find(f.name); it != value_flags().end()) {
      if (Status s = it->second(cmd, f.value); !s) return s.error();
    } else if (Status s = set_bool(bool_flags().at(f.name)(cmd), f.name, f.value); !s) {
      return s.error();
    }
  }
  if (cmd.help || cmd.version) return cmd;
  if (!cmd.config.state_dir_set)
    cmd.config.state_dir = default_state_dir("statherd", process_env(), ::geteuid());
  if (cmd.config.etcd.enabled) {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) name[0] = '\0';
    cluster::EtcdSettings& e = cmd.config.etcd;
    if (e.id.empty()) {
      e.id = name;
      if (!cluster::valid_name(e.id))
        return make_error("etcd.id: the host name \"" + etcd::printable(e.id) +
                              "\" is not a valid member id",
                          "set etcd.id: 1 to 64 of A-Z a-z 0-9 _ . -, unique in the cluster");
    }
    if (e.advertise.empty()) {
      auto listen = parse_host_port(cmd.config.listen);  // checked by validate_server_config
      e.advertise = cluster::default_advertise(listen->host, listen->port, name);
      if (Status s = cluster::check_advertise_url(e.advertise); !s)
        return make_error("etcd.advertise: the default from listen and the host name is not "
                          "usable: " + s.error().message,
                          "set etcd.advertise to the http://HOST:PORT agents and the other "
                          "servers reach this one at");
    }
  }
  if (Status s = validate_server_config(cmd.config); !s) return s.error();
  if (token_flag) {  // as statherd-agent: a bad --token-file is named as the flag
    if (auto token = read_token_file(cmd.config.token_file); !token)
      return make_error("--token-file: " + token.error().message, token.error().hint);
  }
  return cmd;
}


EngineOptions engine_options_from(const ServerConfig& c) {
  EngineOptions o;
  o.interval = c.interval;
  o.late_window = c.late_window;
  o.snapshot_every = c.snapshot_every;
  o.idle_timeout = c.idle_timeout;
  o.level_process = c.level_process;
  o.level_host = c.level_host;
  o.level_app = c.level_app;
  o.max_series_total = c.max_series_total;
  o.max_series_per_source = c.max_series_per_source;
  o.wire_limits.max_samples = c.max_samples_per_batch;
  o.state_dir = c.state_dir;
  o.threads = c.threads;
  return o;
}

Result<unsigned> parse_threads(const std::string& text) {
  if (text == "auto") return 0u;
  if (text.size() > 1 && text[0] == '0')
    return make_error("threads '" + text + "' has a leading zero",
                      "write the number without it (some YAML tools read 0256 as octal)");
  unsigned v = 0;
  bool digits = !text.empty() && text.size() <= 4;
  for (char ch : text) {
    if (ch < '0' || ch > '9') digits = false;
    else v = v * 10 + static_cast<unsigned>(ch - '0');
  }
  if (!digits || v < 1 || v > kMaxThreads)
    return make_error("not a number of threads: '" + text + "'",
                      "use auto (the machine's cores, at most " + std::to_string(kMaxAutoThreads) +
                          ") or a number from 1 to " + std::to_string(kMaxThreads));
  return v;
}

}  // namespace statherd::server
