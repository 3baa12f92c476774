// The parser of the Prometheus text format 0.0.4 (grammar in prometheus_text.h).
#include "agent/sources/prometheus_text.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace statherd::agent {

const char* prom_type_name(PromType t) {
  switch (t) {
    case PromType::Untyped: return "untyped";
    case PromType::Counter: return "counter";
    case PromType::Gauge: return "gauge";
    case PromType::Histogram: return "histogram";
    case PromType::Summary: return "summary";
  }
  return "?";
}

namespace {

constexpr const char* kFormatHint =
    "the endpoint must serve the Prometheus text format 0.0.4 "
    "(https://prometheus.io/docs/instrumenting/exposition_formats/)";

bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
bool is_label_start(char c) { return is_name_start(c) && c != ':'; }
bool is_label_char(char c) { return is_name_char(c) && c != ':'; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// A float as Go's strconv.ParseFloat reads one: decimal/exponent, NaN, [+-]Inf[inity].
std::optional<double> parse_prom_float(std::string_view t) {
  if (t.empty()) return std::nullopt;
  bool negative = t.front() == '-';
  std::string_view body = (t.front() == '+' || t.front() == '-') ? t.substr(1) : t;
  if (iequals(body, "inf") || iequals(body, "infinity"))
    return negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
  if (iequals(body, "nan")) return std::numeric_limits<double>::quiet_NaN();
  if (body.empty() || !((body[0] >= '0' && body[0] <= '9') || body[0] == '.')) return std::nullopt;
  double v = 0;
  auto [p, ec] = std::from_chars(body.data(), body.data() + body.size(), v);
  if (ec == std::errc::result_out_of_range) {
    // Go rounds to ±Inf or 0; so do we (from_chars leaves v unset here).
    v = std::numeric_limits<double>::infinity();
    bool tiny = body.find_first_of("eE") != std::string_view::npos &&
                body.find('-', body.find_first_of("eE")) != std::string_view::npos;
    if (tiny) v = 0;
  } else if (ec != std::errc() || p != body.data() + body.size()) {
    return std::nullopt;
  }
  return negative ? -v : v;
}

std::optional<int64_t> parse_timestamp(std::string_view t) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size()) return std::nullopt;
  return v;
}

// The state of one parse: families by name, the line being read.
class TextParser {
 public:
  Result<std::vector<PromFamily>> run(std::string_view text);

 private:
  Error error(const std::string& what) const {
    return make_error("line " + std::to_string(line_no_) + ": " + what, kFormatHint);
  }
  Status parse_line(std::string_view line);
  Status parse_comment(std::string_view rest);
  Status parse_sample(std::string_view line);
  Status parse_labels(std::string_view line, size_t& pos, Tags& labels);
  Status parse_label_value(std::string_view line, size_t& pos, std::string& out);
  PromFamily& family_named(const std::string& name);
  Result<PromFamily*> family_of_sample(const std::string& name);

  uint32_t line_no_ = 0;
  std::vector<PromFamily> families_;
  std::unordered_map<std::string, size_t> index_;
  std::unordered_map<std::string, bool> has_help_, has_type_;
};

Result<std::vector<PromFamily>> TextParser::run(std::string_view text) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    ++line_no_;
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (auto st = parse_line(line); !st) return st.error();
    start = end + 1;
  }
  return std::move(families_);
}

Status TextParser::parse_line(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && is_blank(line[i])) ++i;
  line.remove_prefix(i);
  if (line.empty()) return Ok{};
  if (line.front() == '#') return parse_comment(line.substr(1));
  return parse_sample(line);
}

PromFamily& TextParser::family_named(const std::string& name) {
  auto [it, inserted] = index_.try_emplace(name, families_.size());
  if (inserted) families_.push_back(PromFamily{name, PromType::Untyped, {}, {}});
  return families_[it->second];
}

// "# HELP name text", "# TYPE name type"; any other comment is ignored.
Status TextParser::parse_comment(std::string_view rest) {
  size_t i = 0;
  while (i < rest.size() && is_blank(rest[i])) ++i;
  if (i == 0) return Ok{};  // "#HELP" without a blank is a plain comment
  size_t kw_end = i;
  while (kw_end < rest.size() && !is_blank(rest[kw_end])) ++kw_end;
  std::string_view keyword = rest.substr(i, kw_end - i);
  if (keyword != "HELP" && keyword != "TYPE") return Ok{};
  size_t n = kw_end;
  while (n < rest.size() && is_blank(rest[n])) ++n;
  size_t name_end = n;
  while (name_end < rest.size() && is_name_char(rest[name_end])) ++name_end;
  if (name_end == n || !is_name_start(rest[n]) ||
      (name_end < rest.size() && !is_blank(rest[name_end])))
    return error("# " + std::string(keyword) + " needs a metric name");
  std::string name(rest.substr(n, name_end - n));
  size_t t = name_end;
  while (t < rest.size() && is_blank(rest[t])) ++t;
  std::string_view arg = rest.substr(t);
  if (keyword == "HELP") {
    if (std::exchange(has_help_[name], true)) return error("second HELP line for " + name);
    std::string help;
    for (size_t k = 0; k < arg.size(); ++k) {
      if (arg[k] == '\\' && k + 1 < arg.size() && (arg[k + 1] == '\\' || arg[k + 1] == 'n')) {
        help.push_back(arg[++k] == 'n' ? '\n' : '\\');
      } else {
        help.push_back(arg[k]);
      }
    }
    family_named(name).help = std::move(help);
    return Ok{};
  }
  while (!arg.empty() && is_blank(arg.back())) arg.remove_suffix(1);
  static constexpr PromType kTypes[] = {PromType::Counter, PromType::Gauge, PromType::Histogram,
                                        PromType::Summary, PromType::Untyped};
  const PromType* found = nullptr;
  for (const PromType& type : kTypes)
    if (arg == prom_type_name(type)) found = &type;
  if (!found) return error("unknown metric type \"" + std::string(arg) + "\" for " + name);
  if (std::exchange(has_type_[name], true)) return error("second TYPE line for " + name);
  PromFamily& family = family_named(name);
  if (!family.samples.empty()) return error("TYPE line for " + name + " after its samples");
  family.type = *found;
  return Ok{};
}

// The family a sample line belongs to: a TYPEd histogram/summary claims its suffixed names.
Result<PromFamily*> TextParser::family_of_sample(const std::string& name) {
  if (auto it = index_.find(name); it != index_.end()) {
    PromFamily& f = families_[it->second];
    if (f.type == PromType::Histogram)
      return error("sample " + name + " of histogram " + name +
                   " must be spelled " + name + "_bucket, _sum or _count");
    return &f;
  }
  static constexpr std::string_view kSuffixes[] = {"_bucket", "_sum", "_count", "_total"};
  for (std::string_view suffix : kSuffixes) {
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(),
                                                     suffix) != 0)
      continue;
    auto it = index_.find(name.substr(0, name.size() - suffix.size()));
    if (it == index_.end()) continue;
    PromFamily& f = families_[it->second];
    const bool claims =
        suffix == "_total" ? f.type == PromType::Counter
                           : f.type == PromType::Histogram ||
                                 (f.type == PromType::Summary && suffix != "_bucket");
    if (claims) return &f;
  }
  return &family_named(name);
}

Status TextParser::parse_sample(std::string_view line) {
  if (!is_name_start(line.front())) return error("expected a metric name or '#'");
  size_t pos = 0;
  while (pos < line.size() && is_name_char(line[pos])) ++pos;
  PromSample sample;
  sample.name = std::string(line.substr(0, pos));
  sample.line = line_no_;
  while (pos < line.size() && is_blank(line[pos])) ++pos;
  if (pos < line.size() && line[pos] == '{') {
    if (auto st = parse_labels(line, pos, sample.labels); !st) return st;
  }
  size_t blanks = pos;
  while (pos < line.size() && is_blank(line[pos])) ++pos;
  if (pos == line.size()) return error("sample " + sample.name + " has no value");
  if (pos == blanks && line[blanks - 1] != '}' && line[blanks - 1] != ' ' && line[blanks - 1] != '\t')
    return error("unexpected character after metric name " + sample.name);
  size_t value_end = pos;
  while (value_end < line.size() && !is_blank(line[value_end])) ++value_end;
  auto value = parse_prom_float(line.substr(pos, value_end - pos));
  if (!value)
    return error("bad value \"" + std::string(line.substr(pos, value_end - pos)) + "\" of " +
                 sample.name);
  sample.value = *value;
  pos = value_end;
  while (pos < line.size() && is_blank(line[pos])) ++pos;
  if (pos < line.size()) {
    size_t ts_end = pos;
    while (ts_end < line.size() && !is_blank(line[ts_end])) ++ts_end;
    sample.timestamp_ms = parse_timestamp(line.substr(pos, ts_end - pos));
    if (!sample.timestamp_ms)
      return error("bad timestamp \"" + std::string(line.substr(pos, ts_end - pos)) + "\" of " +
                   sample.name);
    pos = ts_end;
    while (pos < line.size() && is_blank(line[pos])) ++pos;
    if (pos < line.size()) return error("unexpected text after the timestamp of " + sample.name);
  }
  auto family = family_of_sample(sample.name);
  if (!family) return family.error();
  (*family)->samples.push_back(std::move(sample));
  return Ok{};
}

// {name="value",...} starting at line[pos] == '{'; leaves pos after '}'.
Status TextParser::parse_labels(std::string_view line, size_t& pos, Tags& labels) {
  ++pos;
  for (;;) {
    while (pos < line.size() && is_blank(line[pos])) ++pos;
    if (pos >= line.size()) return error("unterminated label set (missing '}')");
    if (line[pos] == '}') break;
    if (!is_label_start(line[pos])) return error("expected a label name or '}'");
    size_t name_start = pos;
    while (pos < line.size() && is_label_char(line[pos])) ++pos;
    std::string name(line.substr(name_start, pos - name_start));
    while (pos < line.size() && is_blank(line[pos])) ++pos;
    if (pos >= line.size() || line[pos] != '=') return error("expected '=' after label " + name);
    ++pos;
    while (pos < line.size() && is_blank(line[pos])) ++pos;
    std::string value;
    if (auto st = parse_label_value(line, pos, value); !st) return st;
    for (const auto& [k, v] : labels)
      if (k == name) return error("label " + name + " given twice");
    labels.emplace_back(std::move(name), std::move(value));
    while (pos < line.size() && is_blank(line[pos])) ++pos;
    if (pos < line.size() && line[pos] == ',') {
      ++pos;
      continue;
    }
    if (pos < line.size() && line[pos] == '}') break;
    if (pos >= line.size()) return error("unterminated label set (missing '}')");
    return error("expected ',' or '}' in the label set");
  }
  ++pos;
  std::sort(labels.begin(), labels.end());
  return Ok{};
}

// "..." with \\ \" \n escapes, starting at the opening quote; leaves pos after the closing one.
Status TextParser::parse_label_value(std::string_view line, size_t& pos, std::string& out) {
  if (pos >= line.size() || line[pos] != '"') return error("a label value must be quoted");
  ++pos;
  while (pos < line.size()) {
    char c = line[pos++];
    if (c == '"') return Ok{};
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (pos >= line.size()) break;
    char e = line[pos++];
    if (e == '\\' || e == '"') out.push_back(e);
    else if (e == 'n') out.push_back('\n');
    else return error(std::string("invalid escape \\") + e + " in a label value");
  }
  return error("unterminated label value (missing '\"')");
}

}  // namespace

Result<std::vector<PromFamily>> parse_prometheus_text(std::span<const uint8_t> bytes) {
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  TextParser parser;
  return parser.run(text);
}

}  // namespace statherd::agent
