// Walking a Scales /status JSON tree into samples (shapes and rules in scales_http.h).
#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include "agent/sources/scales_http.h"

namespace statherd::agent {
namespace {

using Json = nlohmann::json;

constexpr const char* kScalesHint =
    "the URL must serve a Scales stat tree as JSON (GET /status/?format=json)";

// Python's json module writes NaN, Infinity and -Infinity, which JSON lacks: outside strings
// they become null. Also refuses nesting deeper than kScalesMaxDepth (the walk recurses).
Result<std::string> python_json_to_json(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  bool in_string = false;
  int depth = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < in.size()) out.push_back(in[++i]);
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    if (c == '{' || c == '[') {
      if (++depth > kScalesMaxDepth)
        return make_error("the JSON tree nests deeper than " + std::to_string(kScalesMaxDepth) +
                              " levels", kScalesHint);
    }
    if (c == '}' || c == ']') --depth;
    for (std::string_view word : {"NaN", "Infinity", "-Infinity"}) {
      if (in.compare(i, word.size(), word) == 0) {
        out.append("null");
        i += word.size() - 1;
        goto next;
      }
    }
    out.push_back(c);
  next:;
  }
  return out;
}

bool is_number(const Json& j) { return j.is_number(); }

bool only_keys(const Json& obj, std::initializer_list<std::string_view> allowed) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool known = false;
    for (std::string_view a : allowed) known = known || it.key() == a;
    if (!known) return false;
  }
  return true;
}

bool is_meter(const Json& obj) {
  if (!obj.contains("count") || !is_number(obj["count"])) return false;
  const bool has_unit = obj.contains("unit") && obj["unit"].is_string();
  const bool has_m1 = obj.contains("m1") && is_number(obj["m1"]);
  return (has_unit || has_m1) && only_keys(obj, {"count", "unit", "m1", "m5", "m15"});
}

constexpr std::array<std::pair<const char*, double>, 6> kPmfQuantiles{{
    {"median", 0.5}, {"75percentile", 0.75}, {"95percentile", 0.95},
    {"98percentile", 0.98}, {"99percentile", 0.99}, {"999percentile", 0.999}}};

bool is_pmf(const Json& obj) {
  for (const char* key : {"count", "min", "max", "mean"})
    if (!obj.contains(key) || !(is_number(obj[key]) || obj[key].is_null())) return false;
  return only_keys(obj, {"count", "min", "max", "mean", "stddev", "median", "75percentile",
                         "95percentile", "98percentile", "99percentile", "999percentile"});
}

double number_or_nan(const Json& j) {
  return j.is_number() ? j.get<double>() : std::numeric_limits<double>::quiet_NaN();
}

class TreeWalker {
 public:
  TreeWalker(const LabelPatternSet& counters, int64_t now_ms) : counters_(counters), now_(now_ms) {}
  void walk_object(const Json& obj, const std::string& prefix);
  std::vector<Sample> samples;

 private:
  void leaf(const std::string& name, const Json& value);
  void meter(const std::string& name, const Json& obj);
  void pmf(const std::string& name, const Json& obj);
  Sample& add(const std::string& name, Kind kind) {
    Sample& s = samples.emplace_back();
    s.name = name;
    s.kind = kind;
    s.timestamp_ms = now_;
    return s;
  }

  const LabelPatternSet& counters_;
  int64_t now_;
};

void TreeWalker::walk_object(const Json& obj, const std::string& prefix) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string name = prefix.empty() ? it.key() : prefix + "." + it.key();
    const Json& v = it.value();
    if (!v.is_object()) leaf(name, v);
    else if (is_meter(v)) meter(name, v);
    else if (is_pmf(v)) pmf(name, v);
    else walk_object(v, name);
  }
}

void TreeWalker::leaf(const std::string& name, const Json& v) {
  if (v.is_number()) {
    add(name, counters_.matches(name) ? Kind::Counter : Kind::Gauge).value = v.get<double>();
  } else if (v.is_boolean()) {
    add(name, Kind::Gauge).value = v.get<bool>() ? 1 : 0;
  } else if (v.is_string()) {
    add(name, Kind::Text).text = v.get<std::string>();
  }
  // null (NaN in Python's JSON) and arrays (Scales writes none): nothing to report
}

void TreeWalker::meter(const std::string& name, const Json& obj) {
  add(name + ".count", Kind::Counter).value = obj["count"].get<double>();
  for (const char* rate : {"m1", "m5", "m15"})
    if (obj.contains(rate) && obj[rate].is_number())
      add(name + "." + rate, Kind::Gauge).value = obj[rate].get<double>();
}

void TreeWalker::pmf(const std::string& name, const Json& obj) {
  Distribution d;
  d.form = Distribution::Form::Summary;
  d.count = number_or_nan(obj["count"]);
  if (std::isnan(d.count)) d.count = 0;
  // Scales refreshes a PMF's mean on its own (lagging) window while count grows every call, so
  // mean x count is no sum: its interval differences went negative. The sum is unknown.
  d.sum_unknown = true;
  d.min = number_or_nan(obj["min"]);
  d.max = number_or_nan(obj["max"]);
  for (const auto& [key, q] : kPmfQuantiles)
    if (obj.contains(key) && obj[key].is_number()) d.quantiles.emplace_back(q, obj[key].get<double>());
  add(name, Kind::Distribution).dist = std::make_shared<const Distribution>(std::move(d));
}

const char* json_type_name(const Json& j) {
  if (j.is_array()) return "an array";
  if (j.is_string()) return "a string";
  if (j.is_number()) return "a number";
  if (j.is_boolean()) return "a boolean";
  return "null";
}

}  // namespace

Result<std::vector<Sample>> scales_tree_samples(std::string_view json_text,
                                                const LabelPatternSet& counter_patterns,
                                                int64_t now_ms) {
  auto text = python_json_to_json(json_text);
  if (!text) return text.error();
  Json root = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    std::string start(json_text.substr(0, 60));
    for (char& c : start)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    return make_error("the answer is not JSON (it starts with \"" + start + "\")", kScalesHint);
  }
  if (!root.is_object())
    return make_error(std::string("the JSON answer is ") + json_type_name(root) +
                          ", not an object (a Scales stat tree)",
                      kScalesHint);
  TreeWalker walker(counter_patterns, now_ms);
  walker.walk_object(root, "");
  return std::move(walker.samples);
}

}  // namespace statherd::agent
