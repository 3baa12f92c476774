#include "server/sinks/prometheus_names.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

namespace statherd::server {

namespace {

bool is_name_char(char ch, bool allow_colon) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '_' || (allow_colon && ch == ':');
}

void append_sanitized(std::string& out, std::string_view text, bool allow_colon) {
  for (char ch : text) out += is_name_char(ch, allow_colon) ? ch : '_';
}

}  // namespace

std::string prometheus_metric_name(std::string_view metric, std::string_view stat) {
  std::string out = "statherd_";
  out.reserve(out.size() + metric.size() + stat.size() + 1);
  append_sanitized(out, metric, true);
  if (!stat.empty()) {
    out += '_';
    append_sanitized(out, stat, true);
  }
  return out;
}

std::string prometheus_label_name(std::string_view key) {
  static constexpr std::array<std::string_view, 5> kReserved{"level", "app", "host", "pid",
                                                             "quantile"};
  std::string out;
  append_sanitized(out, key, false);
  bool reserved = std::find(kReserved.begin(), kReserved.end(), out) != kReserved.end();
  if (out.empty() || (out[0] >= '0' && out[0] <= '9') || out.starts_with("__") || reserved) {
    out.insert(0, "tag_");
  }
  return out;
}

std::optional<double> quantile_of_stat(std::string_view stat) {
  if (stat.size() < 2 || stat[0] != 'p') return std::nullopt;
  std::string_view digits = stat.substr(1);
  if (digits.size() > 6 || !std::all_of(digits.begin(), digits.end(),
                                        [](char ch) { return ch >= '0' && ch <= '9'; })) {
    return std::nullopt;
  }
  // The first two digits are the whole percent, the rest its decimals ("p999" -> 99.9 %), so
  // q = digits / 10^len ("p5", one digit: 5 %). One division keeps 0.999 exactly "0.999".
  double value = std::stod(std::string(digits));
  double scale = digits.size() == 1 ? 100.0 : std::pow(10.0, static_cast<double>(digits.size()));
  return value / scale;
}

prometheus::Labels prometheus_series_labels(const SeriesKey& key) {
  prometheus::Labels labels;
  for (const auto& [k, value] : key.tags) labels[prometheus_label_name(k)] = value;
  labels["level"] = std::string(level_name(key.level));
  labels["app"] = key.app;
  if (key.level != Level::App) labels["host"] = key.host;
  if (key.level == Level::Process) labels["pid"] = std::to_string(key.pid);
  return labels;
}

std::string prometheus_series_id(std::string_view family, const SeriesKey& key) {
  // The labels in the order prometheus_series_labels assigns them (tags, then level, app,
  // host, pid): where two share a name the later one is the map's value.
  std::string pid;
  if (key.level == Level::Process) pid = std::to_string(key.pid);
  std::vector<std::string> tag_names;
  tag_names.reserve(key.tags.size());
  struct Label {
    std::string_view name, value;
  };
  std::vector<Label> labels;
  labels.reserve(key.tags.size() + 4);
  for (const auto& [k, value] : key.tags) {
    tag_names.push_back(prometheus_label_name(k));
    labels.push_back({tag_names.back(), value});
  }
  // tag_names never grows past its reservation: the views into it stay valid.
  labels.push_back({"level", level_name(key.level)});
  labels.push_back({"app", key.app});
  if (key.level != Level::App) labels.push_back({"host", key.host});
  if (key.level == Level::Process) labels.push_back({"pid", pid});
  std::stable_sort(labels.begin(), labels.end(),
                   [](const Label& a, const Label& b) { return a.name < b.name; });
  size_t bytes = family.size();
  for (const Label& l : labels) bytes += l.name.size() + l.value.size() + 2;
  std::string out;
  out.reserve(bytes);
  out.append(family);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i + 1 < labels.size() && labels[i + 1].name == labels[i].name) continue;  // later wins
    out += '\x1f';
    out.append(labels[i].name);
    out += '=';
    out.append(labels[i].value);
  }
  return out;
}

std::string prometheus_help(std::string_view metric, std::string_view what) {
  return "statherd rollup of '" + std::string(metric) + "': " + std::string(what);
}

PromTarget prometheus_target(SeriesKind kind, std::string_view metric, std::string_view stat) {
  if (kind == SeriesKind::Counter && stat == "count")
    return {PromRole::CounterTotal, prometheus_metric_name(metric, "count_total"), 0};
  if (kind == SeriesKind::Distribution) {
    if (stat == "count") return {PromRole::SummaryCount, {}, 0};
    if (stat == "sum") return {PromRole::SummarySum, {}, 0};
    if (auto q = quantile_of_stat(stat)) return {PromRole::Quantile, {}, *q};
  }
  // "_sum" is reserved for summaries and histograms (promtool lint): a gauge's sum is "summed".
  return {PromRole::Gauge, prometheus_metric_name(metric, stat == "sum" ? "summed" : stat), 0};
}

}  // namespace statherd::server
