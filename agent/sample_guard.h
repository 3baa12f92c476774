// The agent's last check on what a source read, whatever its kind: a NaN or +-Inf counter or
// gauge (or a distribution with a non-finite count, sum or quantile) would poison the server's
// rates for good, and the server refuses the whole batch that carries one. So every source's
// samples pass here once, where the agent gathers them (AgentLoop::scrape_counted): non-finite
// samples are dropped, and the source gets one SourceError naming them (per-source, like a bad
// file), so the other samples of that source and every other source still ship. A histogram's
// or summary's non-finite sum is the exception: the sum becomes unknown, the rest ships.
#pragma once

#include <vector>

#include "common/sample.h"

namespace statherd::agent {

// A histogram's or summary's non-finite sum (prometheus_client keeps _sum NaN or +-Inf forever
// after one such observation) does not cost the distribution: its sum is marked unknown
// (Distribution::sum_unknown) and its count, buckets and quantiles ship. Returns how many.
// Sketches are left alone (their sum is part of the sketch; a non-finite one is dropped).
size_t mark_non_finite_sums_unknown(SourceSamples& ss);

// True if `s` carries only finite numbers (text samples always pass; an unknown sum passes; a
// summary's min and max may be NaN, meaning "not known").
bool sample_is_finite(const Sample& s);

// Removes the non-finite samples of `ss`; if any, appends one error for ss.id.path to `errors`
// ("2 non-finite values dropped: requests.count, latency ..."). Returns how many were dropped.
size_t drop_non_finite(SourceSamples& ss, std::vector<SourceError>& errors);

// The app name "self" is reserved for the daemons' own metrics (agent/self_metrics.h, the
// server's self samples): a source that claims it (an mmstats file self-<pid>-<tid>.mmstats, a
// v2 file whose header says app "self", a prom_multiproc directory named self, an HTTP endpoint
// configured as self=URL) would forge the statherd.self.* series operators alert on. True if
// `ss` claims it; then one error for ss.id.path is appended and the caller drops the source
// (refused, not renamed: its samples go nowhere until the writer uses another name).
bool claims_reserved_app(const SourceSamples& ss, std::vector<SourceError>& errors);

// Every check of this file on one source a source kind read: false if it must be dropped
// whole, else non-finite sums become unknown and the other non-finite samples are dropped
// (both with their errors).
bool guard_source(SourceSamples& ss, std::vector<SourceError>& errors);

}  // namespace statherd::agent
