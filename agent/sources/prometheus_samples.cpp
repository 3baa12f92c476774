// Prometheus families -> statherd samples (rules in prometheus_text.h).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <string_view>

#include "agent/sources/prometheus_text.h"

namespace statherd::agent {
namespace {

bool has_suffix(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Removes `label` from a sorted label set; returns its value (nullopt if absent).
std::optional<std::string> take_label(Tags& labels, std::string_view label) {
  auto it = std::find_if(labels.begin(), labels.end(), [&](const auto& kv) { return kv.first == label; });
  if (it == labels.end()) return std::nullopt;
  std::string v = std::move(it->second);
  labels.erase(it);
  return v;
}

std::optional<double> parse_bound(std::string_view t) {
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  if (t == "+Inf" || t == "Inf" || t == "inf" || t == "+inf") return std::numeric_limits<double>::infinity();
  if (!t.empty() && t.front() == '+') t.remove_prefix(1);
  double v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size() || std::isnan(v)) return std::nullopt;
  return v;
}

Error bad_label(const PromSample& s, std::string_view label) {
  return make_error("line " + std::to_string(s.line) + ": " + s.name + " needs a numeric " +
                        std::string(label) + " label",
                    "the endpoint must serve the Prometheus text format 0.0.4");
}

// One histogram or summary series under construction (keyed by its labels without le/quantile).
struct Composite {
  Tags tags;
  std::vector<std::pair<double, double>> points;  // (le, cumulative) or (quantile, value)
  std::optional<double> count, sum;
};

Status collect(const PromFamily& f, std::string_view point_label,
               std::map<Tags, Composite>& series) {
  for (const PromSample& s : f.samples) {
    Tags tags = s.labels;
    std::optional<double> point;
    bool is_point = f.type == PromType::Histogram ? has_suffix(s.name, "_bucket") : s.name == f.name;
    if (is_point) {
      auto text = take_label(tags, point_label);
      if (!text || !(point = parse_bound(*text))) return bad_label(s, point_label);
    }
    Composite& c = series[tags];
    c.tags = tags;
    if (point) c.points.emplace_back(*point, s.value);
    else if (has_suffix(s.name, "_sum")) c.sum = s.value;
    else if (has_suffix(s.name, "_count")) c.count = s.value;
  }
  return Ok{};
}

Distribution histogram_of(Composite& c) {
  Distribution d;
  d.form = Distribution::Form::Buckets;
  std::sort(c.points.begin(), c.points.end());
  double previous = 0;
  for (const auto& [le, cumulative] : c.points) {
    if (!d.bucket_upper_bounds.empty() && d.bucket_upper_bounds.back() == le) continue;
    d.bucket_upper_bounds.push_back(le);
    d.bucket_counts.push_back(std::max(0.0, cumulative - previous));  // never negative
    previous = std::max(previous, cumulative);
  }
  const bool has_inf = !d.bucket_upper_bounds.empty() && std::isinf(d.bucket_upper_bounds.back());
  d.count = c.count.value_or(has_inf ? previous : 0);
  if (!has_inf && d.count > previous) {  // the +Inf bucket is missing: what _count says is above
    d.bucket_upper_bounds.push_back(std::numeric_limits<double>::infinity());
    d.bucket_counts.push_back(d.count - previous);
  }
  d.sum = c.sum.value_or(0);
  return d;
}

Distribution summary_of(Composite& c) {
  Distribution d;
  d.form = Distribution::Form::Summary;
  std::sort(c.points.begin(), c.points.end());
  d.quantiles = c.points;
  d.count = c.count.value_or(0);
  d.sum = c.sum.value_or(0);
  d.min = d.max = std::numeric_limits<double>::quiet_NaN();  // a Prometheus summary has neither
  return d;
}

Status append_composites(const PromFamily& f, int64_t now_ms, std::vector<Sample>& out) {
  std::map<Tags, Composite> series;
  if (auto st = collect(f, f.type == PromType::Histogram ? "le" : "quantile", series); !st)
    return st;
  for (auto& [key, c] : series) {
    Sample s;
    s.name = f.name;
    s.tags = c.tags;
    s.kind = Kind::Distribution;
    s.timestamp_ms = now_ms;
    s.dist = std::make_shared<const Distribution>(f.type == PromType::Histogram ? histogram_of(c)
                                                                                : summary_of(c));
    out.push_back(std::move(s));
  }
  return Ok{};
}

}  // namespace

Result<std::vector<Sample>> prometheus_samples(const std::vector<PromFamily>& families,
                                               int64_t now_ms) {
  std::vector<Sample> out;
  for (const PromFamily& f : families) {
    if (f.type == PromType::Histogram || f.type == PromType::Summary) {
      if (auto st = append_composites(f, now_ms, out); !st) return st.error();
      continue;
    }
    for (const PromSample& ps : f.samples) {
      Sample s;
      s.name = ps.name;
      s.tags = ps.labels;
      s.kind = f.type == PromType::Counter ? Kind::Counter : Kind::Gauge;
      s.timestamp_ms = now_ms;
      s.value = ps.value;
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace statherd::agent
