#include "agent/sample_guard.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "agent/self_metrics.h"

namespace statherd::agent {

namespace {

bool all_finite(const std::vector<double>& values) {
  return std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); });
}

bool distribution_is_finite(const Distribution& d) {
  switch (d.form) {
    case Distribution::Form::Sketch:
      return std::isfinite(d.sketch.count()) && std::isfinite(d.sketch.sum());
    case Distribution::Form::Buckets:
      // The last upper bound may be +Inf (Prometheus' le="+Inf"); counts may not.
      return std::isfinite(d.count) && (d.sum_unknown || std::isfinite(d.sum)) &&
             all_finite(d.bucket_counts) &&
             std::none_of(d.bucket_upper_bounds.begin(), d.bucket_upper_bounds.end(),
                          [](double b) { return std::isnan(b); });
    case Distribution::Form::Summary:
      return std::isfinite(d.count) && (d.sum_unknown || std::isfinite(d.sum)) &&
             !std::isinf(d.min) &&
             !std::isinf(d.max) &&
             std::all_of(d.quantiles.begin(), d.quantiles.end(),
                         [](const auto& q) { return std::isfinite(q.second); });
  }
  return true;
}

}  // namespace

size_t mark_non_finite_sums_unknown(SourceSamples& ss) {
  size_t marked = 0;
  for (Sample& s : ss.samples) {
    if (s.kind != Kind::Distribution || !s.dist || s.dist->form == Distribution::Form::Sketch ||
        s.dist->sum_unknown || std::isfinite(s.dist->sum))
      continue;
    auto copy = std::make_shared<Distribution>(*s.dist);
    copy->set_sum_or_unknown(copy->sum);
    s.dist = std::move(copy);
    ++marked;
  }
  return marked;
}

bool sample_is_finite(const Sample& s) {
  switch (s.kind) {
    case Kind::Counter:
    case Kind::Gauge: return std::isfinite(s.value);
    case Kind::Distribution: return !s.dist || distribution_is_finite(*s.dist);
    case Kind::Text: return true;
  }
  return true;
}

size_t drop_non_finite(SourceSamples& ss, std::vector<SourceError>& errors) {
  constexpr size_t kNamesShown = 5;
  std::string names;
  size_t dropped = 0;
  std::erase_if(ss.samples, [&](const Sample& s) {
    if (sample_is_finite(s)) return false;
    if (dropped < kNamesShown) names += (dropped ? ", " : "") + s.name;
    ++dropped;
    return true;
  });
  if (dropped == 0) return 0;
  if (dropped > kNamesShown) names += ", ...";
  errors.push_back({ss.id.path, std::to_string(dropped) + " non-finite value" +
                                    (dropped == 1 ? "" : "s") + " (NaN or Inf) dropped: " + names +
                                    "\nhint: the process wrote NaN or Inf into these stats; the "
                                    "other stats of this source were shipped"});
  return dropped;
}

bool claims_reserved_app(const SourceSamples& ss, std::vector<SourceError>& errors) {
  if (ss.id.app != kSelfApp) return false;
  errors.push_back({ss.id.path, std::string("app name \"") + kSelfApp +
                                    "\" is reserved for statherd's own metrics; this source's " +
                                    std::to_string(ss.samples.size()) +
                                    " samples were refused\nhint: give the writer another app "
                                    "name (the file name's or header's app, or APP= in the "
                                    "config); statherd.self.* carries only the daemons' own "
                                    "metrics"});
  return true;
}

bool guard_source(SourceSamples& ss, std::vector<SourceError>& errors) {
  if (claims_reserved_app(ss, errors)) return false;
  mark_non_finite_sums_unknown(ss);
  drop_non_finite(ss, errors);
  return true;
}

}  // namespace statherd::agent
