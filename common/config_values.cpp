// Config value parsers declared in yaml_util.h: durations, byte sizes, host:port, and
// ConfigError formatting. Pure functions on text; they return Result and never throw.
#include <charconv>
#include <cmath>
#include <limits>

#include "common/yaml_util.h"

namespace statherd {

namespace {

constexpr const char* kDurationAllowed =
    "a duration like 10s, 500ms, 5m, 1h, 2d (bare number = seconds)";
constexpr const char* kBytesAllowed =
    "a size like 4096, 64KiB, 10MB, 256MiB, 1GiB (binary multiples)";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// A non-negative number "123" or "1.5" followed by a unit suffix.
struct NumberWithUnit {
  bool has_fraction = false;
  uint64_t integer = 0;  // valid when !has_fraction
  double real = 0;       // always set
  std::string_view unit;
};

bool split_number(std::string_view text, NumberWithUnit& out) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0) return false;  // no leading digit: rejects "", "-5", "+5", ".5", "abc"
  size_t end = i;
  if (end < text.size() && text[end] == '.') {
    size_t frac = end + 1;
    while (frac < text.size() && text[frac] >= '0' && text[frac] <= '9') ++frac;
    if (frac == end + 1) return false;  // "1." is not a number
    out.has_fraction = true;
    end = frac;
  }
  std::string_view number = text.substr(0, end);
  auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), out.real);
  if (ec != std::errc() || p != number.data() + number.size()) return false;
  if (!out.has_fraction) {
    auto [q, ec2] = std::from_chars(number.data(), number.data() + number.size(), out.integer);
    if (ec2 != std::errc()) return false;  // out of range for uint64
    (void)q;
  }
  out.unit = trim(text.substr(end));
  return true;
}

// value * multiplier as uint64, exact for integers, rounded for fractions; false on overflow.
bool scale(const NumberWithUnit& n, uint64_t multiplier, uint64_t& out) {
  if (!n.has_fraction) {
    if (multiplier != 0 && n.integer > std::numeric_limits<uint64_t>::max() / multiplier)
      return false;
    out = n.integer * multiplier;
    return true;
  }
  const double v = std::round(n.real * static_cast<double>(multiplier));
  if (!(v < 18446744073709551615.0)) return false;
  out = static_cast<uint64_t>(v);
  return true;
}

}  // namespace

std::string ConfigError::to_string() const {
  std::string out = file;
  if (line > 0) {  // appended piecewise: GCC 12 -O3 warns (-Wrestrict) on ":" + to_string(...)
    out += ':';
    out += std::to_string(line);
    out += ':';
    out += std::to_string(column);
  }
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  if (!allowed.empty()) out += " (allowed: " + allowed + ")";
  return out;
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text, bool allow_zero) {
  const std::string quoted = "invalid duration \"" + std::string(text) + "\"";
  const std::string hint = std::string("write ") + kDurationAllowed;
  NumberWithUnit n;
  if (!split_number(trim(text), n)) return make_error(quoted + ": not a non-negative number", hint);
  uint64_t unit_ms = 0;
  if (n.unit.empty() || n.unit == "s")
    unit_ms = 1000;
  else if (n.unit == "ms")
    unit_ms = 1;
  else if (n.unit == "m")
    unit_ms = 60'000;
  else if (n.unit == "h")
    unit_ms = 3'600'000;
  else if (n.unit == "d")
    unit_ms = 86'400'000;
  else
    return make_error(quoted + ": unknown unit \"" + std::string(n.unit) + "\"", hint);
  uint64_t ms = 0;
  if (!scale(n, unit_ms, ms) || ms > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return make_error(quoted + ": too large", hint);
  }
  if (ms == 0 && !allow_zero) {
    return make_error(quoted + ": must be at least 1ms", hint);
  }
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

Result<std::chrono::milliseconds> parse_interval(std::string_view text) {
  auto d = parse_duration(text);
  if (!d) return make_error(d.error().message, std::string("write ") + kIntervalAllowed);
  const std::string quoted = "invalid interval \"" + std::string(text) + "\"";
  const std::string hint = std::string("write ") + kIntervalAllowed +
                           " (Graphite timestamps are whole seconds: a shorter or fractional "
                           "interval emits several intervals under one timestamp)";
  if (d->count() % 1000 != 0) return make_error(quoted + ": not a whole number of seconds", hint);
  if (d->count() < 1000) return make_error(quoted + ": shorter than 1s", hint);
  if (d->count() > 3'600'000) return make_error(quoted + ": longer than 1h", hint);
  return *d;
}

Result<uint64_t> parse_bytes(std::string_view text) {
  const std::string quoted = "invalid size \"" + std::string(text) + "\"";
  const std::string hint = std::string("write ") + kBytesAllowed;
  NumberWithUnit n;
  if (!split_number(trim(text), n)) return make_error(quoted + ": not a non-negative number", hint);
  const std::string unit = lower(n.unit);
  uint64_t multiplier = 0;
  if (unit.empty() || unit == "b")
    multiplier = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib")
    multiplier = uint64_t{1} << 10;
  else if (unit == "m" || unit == "mb" || unit == "mib")
    multiplier = uint64_t{1} << 20;
  else if (unit == "g" || unit == "gb" || unit == "gib")
    multiplier = uint64_t{1} << 30;
  else if (unit == "t" || unit == "tb" || unit == "tib")
    multiplier = uint64_t{1} << 40;
  else
    return make_error(quoted + ": unknown unit \"" + std::string(n.unit) + "\"", hint);
  uint64_t bytes = 0;
  if (!scale(n, multiplier, bytes)) return make_error(quoted + ": too large", hint);
  return bytes;
}

Result<HostPort> parse_host_port(std::string_view text) {
  const std::string quoted = "invalid address \"" + std::string(text) + "\"";
  const std::string hint = "write HOST:PORT, e.g. 127.0.0.1:8470, localhost:2003 or [::1]:8470";
  HostPort hp;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return make_error(quoted + ": expected [IPV6]:PORT", hint);
    }
    hp.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return make_error(quoted + ": no port", hint);
    hp.host = std::string(text.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) {
      return make_error(quoted + ": an IPv6 address needs brackets", hint);
    }
    port_text = text.substr(colon + 1);
  }
  if (hp.host.empty())
    return make_error(quoted + ": empty host", hint + " (0.0.0.0 for all interfaces)");
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || p != port_text.data() + port_text.size() ||
      port < 1 || port > 65535) {
    return make_error(quoted + ": port must be a number from 1 to 65535", hint);
  }
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

}  // namespace statherd
