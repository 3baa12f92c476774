// YamlReader (see yaml_util.h); the value parsers are in config_values.cpp.
// yaml-cpp marks are 0-based; ConfigError is 1-based.
// Nothing here throws: yaml-cpp exceptions are caught and become ConfigError entries.
#include "common/yaml_util.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

namespace statherd {

namespace {

constexpr const char* kDurationAllowed =
    "a duration like 10s, 500ms, 5m, 1h, 2d (bare number = seconds)";
constexpr const char* kBytesAllowed =
    "a size like 4096, 64KiB, 10MB, 256MiB, 1GiB (binary multiples)";

std::string join_key(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

const char* type_name(const YAML::Node& n) {
  if (!n.IsDefined()) return "nothing";
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "null (an empty value)";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "nothing";
  }
}

// For messages: a scalar is quoted, anything else named by its type.
std::string describe(const YAML::Node& n) {
  if (n.IsDefined() && n.IsScalar()) return "\"" + n.Scalar() + "\"";
  return type_name(n);
}

// The value under `key` if map is a mapping holding it; otherwise an undefined node.
YAML::Node lookup(const YAML::Node& map, const std::string& key) {
  if (!map.IsDefined() || !map.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  YAML::Node value = map[key];
  if (!value.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
  return value;
}

}  // namespace

YamlReader::YamlReader(std::string file) : file_(std::move(file)) {
  std::ifstream in(file_, std::ios::binary);
  if (!in) {
    errors_.push_back(ConfigError{
        file_, 0, 0, "", std::string("cannot read config file: ") + std::strerror(errno), ""});
    root_ = YAML::Node(YAML::NodeType::Undefined);
    return;
  }
  std::ostringstream text;
  text << in.rdbuf();
  parse(text.str());
}

YamlReader::YamlReader(std::string file, std::string_view text) : file_(std::move(file)) {
  parse(text);
}

void YamlReader::parse(std::string_view text) {
  try {
    root_ = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    ConfigError err{file_, 0, 0, "", "YAML syntax error: " + e.msg, ""};
    if (e.mark.line >= 0) {
      err.line = e.mark.line + 1;
      err.column = e.mark.column + 1;
    }
    errors_.push_back(std::move(err));
    root_ = YAML::Node(YAML::NodeType::Undefined);
    return;
  }
  if (!root_.IsDefined() || root_.IsNull()) {
    root_ = YAML::Node(YAML::NodeType::Map);
  } else if (!root_.IsMap()) {
    error_at(root_, "",
             std::string("the top level must be a mapping of keys, not ") + type_name(root_));
    root_ = YAML::Node(YAML::NodeType::Undefined);
  }
}

void YamlReader::error_at(const YAML::Node& node, const std::string& key,
                          const std::string& message, const std::string& allowed) {
  ConfigError err{file_, 0, 0, key, message, allowed};
  if (node.IsDefined()) {
    const YAML::Mark mark = node.Mark();
    if (mark.line >= 0) {
      err.line = mark.line + 1;
      err.column = mark.column + 1;
    }
  }
  errors_.push_back(std::move(err));
}

bool YamlReader::get_string(const YAML::Node& map, const std::string& key, std::string& out,
                            const std::string& prefix) {
  YAML::Node n = lookup(map, key);
  if (!n.IsDefined()) return false;
  if (!n.IsScalar()) {
    error_at(n, join_key(prefix, key), "expected a string, got " + describe(n), "a string");
    return false;
  }
  out = n.Scalar();
  return true;
}

bool YamlReader::get_bool(const YAML::Node& map, const std::string& key, bool& out,
                          const std::string& prefix) {
  YAML::Node n = lookup(map, key);
  if (!n.IsDefined()) return false;
  bool value = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, value)) {
    error_at(n, join_key(prefix, key), "expected true or false, got " + describe(n), "true, false");
    return false;
  }
  out = value;
  return true;
}

bool YamlReader::get_int(const YAML::Node& map, const std::string& key, int64_t& out, int64_t min,
                         int64_t max, const std::string& prefix) {
  YAML::Node n = lookup(map, key);
  if (!n.IsDefined()) return false;
  const std::string allowed =
      "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  int64_t value = 0;
  bool parsed = false;
  if (n.IsScalar()) {
    std::string_view text = n.Scalar();
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    parsed = !text.empty() && ec == std::errc() && p == text.data() + text.size();
  }
  // The range is said once, in "allowed" (it was also in the message: said twice).
  if (!parsed) {
    error_at(n, join_key(prefix, key), "expected an integer, got " + describe(n), allowed);
    return false;
  }
  if (value < min || value > max) {
    error_at(n, join_key(prefix, key), std::to_string(value) + " is out of range", allowed);
    return false;
  }
  out = value;
  return true;
}

bool YamlReader::get_double(const YAML::Node& map, const std::string& key, double& out,
                            const std::string& prefix) {
  YAML::Node n = lookup(map, key);
  if (!n.IsDefined()) return false;
  double value = 0;
  bool parsed = false;
  if (n.IsScalar()) {
    std::string_view text = n.Scalar();
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    parsed = !text.empty() && ec == std::errc() && p == text.data() + text.size() &&
             std::isfinite(value);
  }
  if (!parsed) {
    error_at(n, join_key(prefix, key), "expected a number, got " + describe(n), "a finite number");
    return false;
  }
  out = value;
  return true;
}

bool YamlReader::get_duration(const YAML::Node& map, const std::string& key,
                              std::chrono::milliseconds& out, const std::string& prefix) {
  YAML::Node n = lookup(map, key);
  if (!n.IsDefined()) return false;
  if (!n.IsScalar()) {
    error_at(n, join_key(prefix, key), "expected a duration, got " + describe(n), kDurationAllowed);
    return false;
  }
  auto parsed = parse_duration(n.Scalar());
  if (!parsed) {
    error_at(n, join_key(prefix, key), parsed.error().message, kDurationAllowed);
    return false;
  }
  out = *parsed;
  return true;
}

bool YamlReader::get_bytes(const YAML::Node& map, const std::string& key, uint64_t& out,
                           const std::string& prefix, uint64_t min, uint64_t max) {
  YAML::Node n = lookup(map, key);
  if (!n.IsDefined()) return false;
  if (!n.IsScalar()) {
    error_at(n, join_key(prefix, key), "expected a size, got " + describe(n), kBytesAllowed);
    return false;
  }
  auto parsed = parse_bytes(n.Scalar());
  if (!parsed) {
    error_at(n, join_key(prefix, key), parsed.error().message, kBytesAllowed);
    return false;
  }
  if (*parsed < min || *parsed > max) {
    error_at(n, join_key(prefix, key),
             "size " + std::to_string(*parsed) + " bytes is out of range",
             "a size from " + std::to_string(min) + " to " + std::to_string(max) + " bytes");
    return false;
  }
  out = *parsed;
  return true;
}

bool YamlReader::get_interval(const YAML::Node& map, const std::string& key,
                              std::chrono::milliseconds& out, const std::string& prefix) {
  YAML::Node n = lookup(map, key);
  if (!n.IsDefined()) return false;
  if (!n.IsScalar()) {
    error_at(n, join_key(prefix, key), "expected an interval, got " + describe(n),
             kIntervalAllowed);
    return false;
  }
  // Not a duration at all: the duration message; a duration out of range: the interval rule.
  if (auto d = parse_duration(n.Scalar()); !d) {
    error_at(n, join_key(prefix, key), d.error().message, kIntervalAllowed);
    return false;
  }
  auto parsed = parse_interval(n.Scalar());
  if (!parsed) {
    error_at(n, join_key(prefix, key), parsed.error().message, kIntervalAllowed);
    return false;
  }
  out = *parsed;
  return true;
}

bool YamlReader::get_string_list(const YAML::Node& map, const std::string& key,
                                 std::vector<std::string>& out, const std::string& prefix) {
  YAML::Node n = lookup(map, key);
  if (!n.IsDefined()) return false;
  const std::string full_key = join_key(prefix, key);
  if (!n.IsSequence()) {
    error_at(n, full_key, "expected a list of strings, got " + describe(n),
             "a list like [a, b] or one \"- item\" per line");
    return false;
  }
  std::vector<std::string> values;
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    if (!item.IsScalar()) {
      error_at(item, full_key + "[" + std::to_string(i) + "]",
               "expected a string, got " + describe(item), "a string");
      return false;
    }
    values.push_back(item.Scalar());
  }
  out = std::move(values);
  return true;
}

YAML::Node YamlReader::get_map(const YAML::Node& map, const std::string& key,
                               const std::string& prefix) {
  YAML::Node n = lookup(map, key);
  if (!n.IsDefined()) return n;
  if (n.IsNull()) return YAML::Node(YAML::NodeType::Map);  // "graphite:" with nothing under it
  if (!n.IsMap()) {
    error_at(n, join_key(prefix, key), "expected a mapping of keys, got " + describe(n),
             "a mapping");
    return YAML::Node(YAML::NodeType::Undefined);
  }
  return n;
}

void YamlReader::check_keys(const YAML::Node& map, const std::set<std::string>& known,
                            const std::string& prefix) {
  if (!map.IsDefined() || !map.IsMap()) return;
  std::string allowed;
  for (const auto& k : known) allowed += (allowed.empty() ? "" : ", ") + k;
  std::set<std::string> seen;
  for (const auto& entry : map) {
    const YAML::Node& key_node = entry.first;
    if (!key_node.IsScalar()) {
      error_at(key_node, prefix, "a key must be a plain string, got " + describe(key_node),
               allowed);
      continue;
    }
    const std::string& key = key_node.Scalar();
    if (!seen.insert(key).second) {
      error_at(key_node, join_key(prefix, key), "duplicate key (the last one would win silently)");
    } else if (known.count(key) == 0) {
      error_at(key_node, join_key(prefix, key), "unknown key", allowed);
    }
  }
}

}  // namespace statherd
