#include "server/dist_delta.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace statherd::server {
namespace {

using Form = Distribution::Form;

// A count that went down by at most this fraction of itself is float noise in a writer that
// sums parts (a Prometheus summary's _count written as a float), not a restart: the difference
// is taken as 0. Anything larger is a reset (the new state counts whole).
constexpr double kNoiseFraction = 1e-9;

// True when `diff` (cur - prev) means the state went down; noise is clamped to 0.
bool went_down(double& diff, double prev) {
  if (diff >= 0) return false;
  if (-diff <= kNoiseFraction * std::max(1.0, prev)) {
    diff = 0;
    return false;
  }
  return true;
}

// prev's counts placed on cur's bounds, when cur's bounds hold every one of prev's (a
// prometheus_client directory whose files disagree: the agent's union grew by a bound; the new
// bound's bucket held nothing before). nullopt when a bound went away.
std::optional<std::vector<double>> counts_on(const Distribution& prev, const Distribution& cur) {
  const auto& from = prev.bucket_upper_bounds;
  const auto& to = cur.bucket_upper_bounds;
  if (from.size() != prev.bucket_counts.size() || to.size() != cur.bucket_counts.size())
    return std::nullopt;
  if (from == to) return prev.bucket_counts;
  std::vector<double> out(to.size(), 0.0);
  size_t j = 0;
  for (size_t i = 0; i < from.size(); ++i) {
    while (j < to.size() && to[j] < from[i]) ++j;
    if (j == to.size() || to[j] != from[i]) return std::nullopt;
    out[j] = prev.bucket_counts[i];
  }
  return out;
}

// The interval's sum: unknown when either state's is (a _sum that went NaN stays unknown).
void subtract_sum(Distribution& d, const Distribution& prev, const Distribution& cur) {
  d.sum_unknown = prev.sum_unknown || cur.sum_unknown;
  d.sum = d.sum_unknown ? 0.0 : cur.sum - prev.sum;
}

std::optional<Distribution> buckets_delta(const Distribution& prev, const Distribution& cur) {
  auto before = counts_on(prev, cur);
  if (!before) return std::nullopt;  // another histogram (a bound went away): a new start
  Distribution d = cur;
  for (size_t i = 0; i < d.bucket_counts.size(); ++i) {
    d.bucket_counts[i] -= (*before)[i];
    if (went_down(d.bucket_counts[i], (*before)[i])) return std::nullopt;
  }
  d.count = cur.count - prev.count;
  if (went_down(d.count, prev.count)) return std::nullopt;
  subtract_sum(d, prev, cur);
  return d;
}

std::optional<Distribution> summary_delta(const Distribution& prev, const Distribution& cur) {
  Distribution d = cur;  // quantiles, min, max: the source's own window
  d.count = cur.count - prev.count;
  if (went_down(d.count, prev.count)) return std::nullopt;
  subtract_sum(d, prev, cur);
  return d;
}

// Adds d's sum into `into`: unknown if either is (a merge with an unknown sum has one).
void add_sum(Distribution& into, const Distribution& d) {
  into.sum_unknown = into.sum_unknown || d.sum_unknown;
  into.sum = into.sum_unknown ? 0.0 : into.sum + d.sum;
}

void add_buckets(Distribution& into, const Distribution& d) {
  if (into.bucket_upper_bounds == d.bucket_upper_bounds &&
      into.bucket_counts.size() == d.bucket_counts.size()) {
    for (size_t i = 0; i < into.bucket_counts.size(); ++i) into.bucket_counts[i] += d.bucket_counts[i];
  } else {  // bounds changed within the interval: keep both, equal bounds added
    std::vector<std::pair<double, double>> all;
    for (const Distribution* x : {static_cast<const Distribution*>(&into), &d}) {
      size_t n = std::min(x->bucket_upper_bounds.size(), x->bucket_counts.size());
      for (size_t i = 0; i < n; ++i) all.emplace_back(x->bucket_upper_bounds[i], x->bucket_counts[i]);
    }
    std::sort(all.begin(), all.end());
    into.bucket_upper_bounds.clear();
    into.bucket_counts.clear();
    for (const auto& [bound, c] : all) {
      if (!into.bucket_upper_bounds.empty() && into.bucket_upper_bounds.back() == bound) {
        into.bucket_counts.back() += c;
      } else {
        into.bucket_upper_bounds.push_back(bound);
        into.bucket_counts.push_back(c);
      }
    }
  }
  into.count += d.count;
  add_sum(into, d);
}

}  // namespace

std::optional<Distribution> distribution_delta(const Distribution& prev, const Distribution& cur) {
  if (prev.form != cur.form) return std::nullopt;
  switch (cur.form) {
    case Form::Sketch: {
      Distribution d;
      d.sketch = cur.sketch;
      if (!d.sketch.subtract(prev.sketch)) return std::nullopt;
      return d;
    }
    case Form::Buckets: return buckets_delta(prev, cur);
    case Form::Summary: return summary_delta(prev, cur);
  }
  return std::nullopt;
}

Distribution empty_delta_like(const Distribution& cur) {
  Distribution d;
  d.form = cur.form;
  switch (cur.form) {
    case Form::Sketch: d.sketch = Sketch(cur.sketch.alpha()); break;
    case Form::Buckets:
      d.bucket_upper_bounds = cur.bucket_upper_bounds;
      d.bucket_counts.assign(cur.bucket_counts.size(), 0.0);
      break;
    case Form::Summary:
      d.quantiles = cur.quantiles;
      d.min = cur.min;
      d.max = cur.max;
      break;
  }
  return d;
}

void merge_delta(Distribution& into, const Distribution& d) {
  if (into.form != d.form) {
    into = d;
    return;
  }
  switch (d.form) {
    case Form::Sketch:
      if (!into.sketch.merge(d.sketch)) into = d;
      break;
    case Form::Buckets: add_buckets(into, d); break;
    case Form::Summary:
      into.count += d.count;
      add_sum(into, d);
      into.quantiles = d.quantiles;
      into.min = d.min;
      into.max = d.max;
      break;
  }
}

}  // namespace statherd::server
