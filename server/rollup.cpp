#include "server/rollup.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <unordered_map>

#include "server/rollup_record.h"

namespace statherd::server {
namespace {

constexpr double kDistQuantiles[] = {0.5, 0.75, 0.9, 0.95, 0.99, 0.999};

// quantile_stat_name of each, made once (no lock per distribution).
const std::string_view* dist_quantile_names() {
  static const auto names = [] {
    std::array<std::string_view, std::size(kDistQuantiles)> n;
    for (size_t i = 0; i < n.size(); ++i) n[i] = quantile_stat_name(kDistQuantiles[i]);
    return n;
  }();
  return names.data();
}

void sketch_stats(const std::vector<const Distribution*>& dists, StatValues& out) {
  Sketch merged(dists.front()->sketch.alpha());
  for (const Distribution* d : dists) merged.merge(d->sketch);  // alpha mismatch: skipped
  out.emplace_back("count", merged.count());
  out.emplace_back("sum", merged.sum());
  if (merged.empty()) return;
  out.emplace_back("min", merged.min());
  out.emplace_back("max", merged.max());
  out.emplace_back("mean", merged.mean());
  for (size_t i = 0; i < std::size(kDistQuantiles); ++i)
    out.emplace_back(dist_quantile_names()[i], merged.quantile(kDistQuantiles[i]));
}

void bucket_stats(const std::vector<const Distribution*>& dists, StatValues& out) {
  std::vector<std::pair<double, double>> all;
  double count = 0, sum = 0;
  bool sum_unknown = false;
  for (const Distribution* d : dists) {
    size_t n = std::min(d->bucket_upper_bounds.size(), d->bucket_counts.size());
    for (size_t i = 0; i < n; ++i) all.emplace_back(d->bucket_upper_bounds[i], d->bucket_counts[i]);
    count += d->count;
    sum += d->sum;
    sum_unknown = sum_unknown || d->sum_unknown;
  }
  std::sort(all.begin(), all.end());
  std::vector<std::pair<double, double>> merged;
  for (const auto& [bound, c] : all) {
    if (!merged.empty() && merged.back().first == bound) merged.back().second += c;
    else merged.emplace_back(bound, c);
  }
  out.emplace_back("count", count);
  if (!sum_unknown) out.emplace_back("sum", sum);
  if (count <= 0) return;
  if (!sum_unknown) out.emplace_back("mean", sum / count);
  for (size_t i = 0; i < std::size(kDistQuantiles); ++i)
    out.emplace_back(dist_quantile_names()[i], bucket_quantile(merged, kDistQuantiles[i]));
}

// "pNN_max" and "pNN_avg" for a summary's quantile q, interned; remembered per thread by q's
// name precision, so a rollup takes the interning lock only for a quantile it has not seen.
std::pair<std::string_view, std::string_view> summary_quantile_names(double q) {
  thread_local std::unordered_map<long, std::pair<std::string_view, std::string_view>> known;
  const long key = std::lround(q * 1'000'000);
  if (auto it = known.find(key); it != known.end()) return it->second;
  const std::string name = quantile_name_text(q);
  std::pair<std::string_view, std::string_view> names{stat_name(name + "_max"),
                                                      stat_name(name + "_avg")};
  if (!names.first.empty() && !names.second.empty() && known.size() < kMaxStatNames)
    known.emplace(key, names);
  return names;
}

void summary_stats(const std::vector<const Distribution*>& dists, StatValues& out) {
  double count = 0, sum = 0;
  bool sum_unknown = false;
  double mn = std::numeric_limits<double>::infinity(), mx = -mn;
  struct Acc { double max = -std::numeric_limits<double>::infinity(), weighted = 0, weight = 0; };
  std::map<double, Acc> per_q;  // small: a handful of quantiles
  for (const Distribution* d : dists) {
    count += d->count;
    sum += d->sum;
    sum_unknown = sum_unknown || d->sum_unknown;
    if (d->count > 0) { mn = std::min(mn, d->min); mx = std::max(mx, d->max); }
    for (const auto& [q, v] : d->quantiles) {
      if (!std::isfinite(v)) continue;
      Acc& a = per_q[q];
      a.max = std::max(a.max, v);
      a.weighted += d->count * v;
      a.weight += d->count;
    }
  }
  out.emplace_back("count", count);
  if (!sum_unknown) out.emplace_back("sum", sum);
  if (count > 0 && !sum_unknown) out.emplace_back("mean", sum / count);
  if (mn <= mx) { out.emplace_back("min", mn); out.emplace_back("max", mx); }
  for (const auto& [q, a] : per_q) {
    const auto [max_name, avg_name] = summary_quantile_names(q);
    if (max_name.empty() || avg_name.empty()) continue;  // refused: too many distinct names
    out.emplace_back(max_name, a.max);
    if (a.weight > 0) out.emplace_back(avg_name, a.weighted / a.weight);
  }
}

}  // namespace

double nearest_rank(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return std::nan("");
  double rank = std::ceil(q * static_cast<double>(sorted.size()));
  size_t k = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(k, sorted.size() - 1)];
}

void gauge_stats(std::vector<double>& values, StatValues& out) {
  if (values.empty()) return;
  std::sort(values.begin(), values.end());
  double sum = 0;
  for (double v : values) sum += v;
  out.emplace_back("min", values.front());
  out.emplace_back("max", values.back());
  out.emplace_back("mean", sum / static_cast<double>(values.size()));
  out.emplace_back("sum", sum);
  out.emplace_back("p50", nearest_rank(values, 0.5));
  out.emplace_back("p90", nearest_rank(values, 0.9));
  out.emplace_back("p99", nearest_rank(values, 0.99));
}

std::string_view quantile_stat_name(double q) { return stat_name(quantile_name_text(q)); }

std::string quantile_name_text(double q) {
  // Up to 4 decimals of the percentage, dot removed: 0.999 -> "p999", 0.5 -> "p50".
  long scaled = std::lround(q * 1'000'000);  // percent * 10^4
  std::string digits = std::to_string(scaled / 10'000);
  long frac = scaled % 10'000;
  if (frac != 0) {
    std::string f = std::to_string(frac);
    f.insert(0, 4 - f.size(), '0');
    while (!f.empty() && f.back() == '0') f.pop_back();
    digits += f;
  }
  return "p" + digits;
}

double bucket_quantile(const std::vector<std::pair<double, double>>& buckets, double q) {
  double total = 0;
  for (const auto& b : buckets) total += b.second;
  if (buckets.empty() || total <= 0) return std::nan("");
  double rank = q * total;
  double cumulative = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    double prev = cumulative;
    cumulative += buckets[i].second;
    if (cumulative < rank || buckets[i].second <= 0) continue;
    double upper = buckets[i].first;
    if (std::isinf(upper)) return i > 0 ? buckets[i - 1].first : std::nan("");
    double lower = i > 0 ? buckets[i - 1].first : 0.0;
    if (i == 0 && upper <= 0) return upper;  // as Prometheus: no lower bound known
    return lower + (upper - lower) * (rank - prev) / buckets[i].second;
  }
  return buckets.back().first;
}

double count_of(const Distribution& d) {
  return d.form == Distribution::Form::Sketch ? static_cast<double>(d.sketch.count()) : d.count;
}
double sum_of(const Distribution& d) {
  return d.form == Distribution::Form::Sketch ? d.sketch.sum() : d.sum;
}

void distribution_stats(const std::vector<const Distribution*>& dists, StatValues& out) {
  if (dists.empty()) return;
  // One name in several forms (a client-library migration): count and sum cover them all; the
  // other stats come from the form holding most of the interval's observations.
  double per_form[4] = {0, 0, 0, 0};  // by Form (1..3)
  double count = 0, sum = 0;
  bool sum_unknown = false;
  for (const Distribution* d : dists) {
    per_form[static_cast<int>(d->form)] += count_of(*d);
    count += count_of(*d);
    sum += sum_of(*d);
    sum_unknown = sum_unknown || d->sum_unknown;
  }
  Distribution::Form form = dists.front()->form;
  for (const Distribution* d : dists)
    if (per_form[static_cast<int>(d->form)] > per_form[static_cast<int>(form)]) form = d->form;
  std::vector<const Distribution*> same;
  same.reserve(dists.size());
  for (const Distribution* d : dists)
    if (d->form == form) same.push_back(d);
  switch (form) {
    case Distribution::Form::Sketch: sketch_stats(same, out); break;
    case Distribution::Form::Buckets: bucket_stats(same, out); break;
    case Distribution::Form::Summary: summary_stats(same, out); break;
  }
  if (same.size() == dists.size()) return;
  std::erase_if(out, [](const auto& s) { return s.first == "count" || s.first == "sum" ||
                                                s.first == "mean"; });
  out.emplace_back("count", count);
  if (sum_unknown) return;
  out.emplace_back("sum", sum);
  if (count > 0) out.emplace_back("mean", sum / count);
}

}  // namespace statherd::server
