// Pure rollup math: the statistics one interval emits for a series, from the per-source values.
// No engine state here, so each rule is testable on its own.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/sample.h"

namespace statherd::server {

// Names are literals or stat_name()'s interned copies (server/rollup_record.h): never dangle.
using StatValues = std::vector<std::pair<std::string_view, double>>;

// Gauges across sources: min, max, mean, sum, p50, p90, p99. Percentiles are exact over the
// per-source values, nearest-rank: the smallest value v[k] with k+1 >= ceil(p * n).
// `values` is sorted in place.
void gauge_stats(std::vector<double>& values, StatValues& out);
double nearest_rank(const std::vector<double>& sorted, double q);

// "p50", "p99", "p999", "p9999" for q = 0.5, 0.99, 0.999, 0.9999: the text, and interned
// (stat_name(): "" when the name table is full).
std::string quantile_name_text(double q);
std::string_view quantile_stat_name(double q);

// Distributions: `dists` are the per-source deltas of one interval (the difference of each
// process's cumulative states, server/dist_delta.h), all of one form (the first
// one's form; others are skipped). Appends stats to out:
// - Sketch: exact merge; count, sum, min, max, mean, p50, p75, p90, p95, p99, p999 (each within
//   the sketch's relative error).
// - Buckets: merged bucket by bucket (equal upper bounds add); count, sum, mean and the same
//   quantiles interpolated linearly inside their bucket as Prometheus' histogram_quantile does
//   (approximate: bucket resolution); no min/max (unknown).
// - Summary: count, sum, mean exact; min/max over sources; per quantile pNN_max (max over
//   sources) and pNN_avg (count-weighted mean over sources): approximate, never one merged pNN.
// A Buckets or Summary delta whose sum is unknown (Distribution::sum_unknown) makes the
// group's sum unknown: no `sum` and no `mean` are appended; count and quantiles are.
void distribution_stats(const std::vector<const Distribution*>& dists, StatValues& out);

// Prometheus histogram_quantile over (upper bound, non-cumulative count), bounds ascending.
double bucket_quantile(const std::vector<std::pair<double, double>>& buckets, double q);

}  // namespace statherd::server
