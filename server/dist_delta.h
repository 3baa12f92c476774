// Per-interval distributions from cumulative ones. Every distribution a source reports is
// cumulative (a v2 sketch, a prometheus_client or Prometheus text histogram, a summary's count
// and sum, a Scales PMF's count): it holds every observation since the process started. The
// engine keeps the previous state per slot (process + series) and rolls up the difference.
// Pure functions, no engine state, so each rule is testable on its own.
#pragma once

#include <optional>

#include "common/sample.h"

namespace statherd::server {

// cur - prev, or nullopt when cur is not a later state of prev (a reset: count went down, a
// bucket went negative, the form, alpha or bucket bounds changed); the caller then counts cur
// whole. Per form:
// - Sketch: bucket counts, zero count, count and sum subtract exactly (Sketch::subtract);
//   min/max become the lowest/highest non-empty buckets' representatives (within alpha).
// - Buckets: counts subtract bucket by bucket (same bounds), count and sum subtract.
// - Summary: count and sum subtract; quantiles, min and max stay the source's own (its own
//   window, approximate).
std::optional<Distribution> distribution_delta(const Distribution& prev, const Distribution& cur);

// No observations, in cur's form (same alpha, bounds; a summary keeps its quantiles, min and
// max): the delta of a first sighting that only sets the baseline.
Distribution empty_delta_like(const Distribution& cur);

// Adds the delta d into `into` (several samples of one slot in one interval): sketches merge,
// buckets add by upper bound, count and sum add; a summary takes d's quantiles, min and max.
// A different form or alpha replaces `into` with d.
void merge_delta(Distribution& into, const Distribution& d);

}  // namespace statherd::server
