// YAML config helpers: every error carries file:line:column and the key involved.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace statherd {

struct ConfigError {
  std::string file;
  int line = 0;     // 1-based; 0 when unknown
  int column = 0;   // 1-based
  std::string key;  // dotted path, e.g. "graphite.address"
  std::string message;
  std::string allowed;  // what is allowed, e.g. "a duration like 10s, 500ms, 5m"
  std::string to_string() const;  // "file:line:column: key: message (allowed: ...)"
};

// "10s", "500ms", "5m", "1h", "2d", or a bare number of seconds. Must be > 0 unless allow_zero.
Result<std::chrono::milliseconds> parse_duration(std::string_view text, bool allow_zero = false);
// A rollup or scrape interval: a duration of whole seconds from 1s to 1h ("10s", "1m", "15").
// Graphite timestamps are whole seconds, so 1500ms would emit two intervals with one timestamp.
Result<std::chrono::milliseconds> parse_interval(std::string_view text);
inline constexpr const char* kIntervalAllowed = "whole seconds from 1s to 1h, e.g. 10s, 1m";
// "256MiB", "10MB", "4096", "1GiB", "64KiB", "100k". Units: B, K/KB/KiB, M/MB/MiB, G/GB/GiB
// (all binary multiples).
Result<uint64_t> parse_bytes(std::string_view text);
// "127.0.0.1:8470", "[::1]:8470", "localhost:2003". Port 1..65535 required.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
Result<HostPort> parse_host_port(std::string_view text);

// Walks a YAML mapping, recording unknown keys and type errors with positions.
// Typical use:
//   YamlReader r(path);                 // loads; a syntax error becomes an error entry
//   if (auto n = r.root()) { r.get_duration(n, "interval", cfg.interval); ... r.finish(n, {...}); }
//   if (!r.errors().empty()) ...
class YamlReader {
 public:
  // Loads the file; a missing/unreadable file or a YAML syntax error is recorded as an error.
  explicit YamlReader(std::string file);
  // For tests: parse text as if it came from `file`.
  YamlReader(std::string file, std::string_view text);

  // The root mapping, or an invalid node (with an error recorded) if the document is not a
  // mapping. An empty document is an empty mapping.
  YAML::Node root() const { return root_; }

  // Each getter: if `key` is absent, leaves `out` unchanged and returns false. If present but of
  // the wrong type/shape, records an error and returns false. `prefix` is the dotted path of `map`.
  bool get_string(const YAML::Node& map, const std::string& key, std::string& out,
                  const std::string& prefix = "");
  bool get_bool(const YAML::Node& map, const std::string& key, bool& out,
                const std::string& prefix = "");
  bool get_int(const YAML::Node& map, const std::string& key, int64_t& out, int64_t min,
               int64_t max, const std::string& prefix = "");
  bool get_double(const YAML::Node& map, const std::string& key, double& out,
                  const std::string& prefix = "");
  bool get_duration(const YAML::Node& map, const std::string& key, std::chrono::milliseconds& out,
                    const std::string& prefix = "");
  // A size in [min, max]; outside is an error at the value's position.
  bool get_bytes(const YAML::Node& map, const std::string& key, uint64_t& out,
                 const std::string& prefix = "", uint64_t min = 0,
                 uint64_t max = UINT64_MAX);
  // An interval (parse_interval): whole seconds, 1s..1h.
  bool get_interval(const YAML::Node& map, const std::string& key, std::chrono::milliseconds& out,
                    const std::string& prefix = "");
  bool get_string_list(const YAML::Node& map, const std::string& key,
                       std::vector<std::string>& out, const std::string& prefix = "");
  // A nested mapping; returns an invalid node if absent (or records an error if not a map).
  YAML::Node get_map(const YAML::Node& map, const std::string& key, const std::string& prefix = "");

  // Records an error for every key of `map` not in `known`.
  void check_keys(const YAML::Node& map, const std::set<std::string>& known,
                  const std::string& prefix = "");

  // Record an error at a node's position.
  void error_at(const YAML::Node& node, const std::string& key, const std::string& message,
                const std::string& allowed = "");

  const std::vector<ConfigError>& errors() const { return errors_; }
  const std::string& file() const { return file_; }

 private:
  void parse(std::string_view text);
  std::string file_;
  YAML::Node root_;
  std::vector<ConfigError> errors_;
};

}  // namespace statherd
