// The agent's last check on what a source read, whatever its kind: a NaN or +-Inf counter or
// gauge (or a distribution with a non-finite count, sum or quantile) would poison the server's
// rates for good, and the server refuses the whole batch that carries one. So every source's
// samples pass here once, where the agent gathers them (AgentLoop::scrape_counted): non-finite
// samples are dropped, and the source gets one SourceError naming them (per-source, like a bad
// file), so the other samples of that source and every other source still ship.
#pragma once

#include <vector>

#include "common/sample.h"

namespace statherd::agent {

// True if `s` carries only finite numbers (text samples always pass; a summary's min and max
// may be NaN, meaning "not known").
bool sample_is_finite(const Sample& s);

// Removes the non-finite samples of `ss`; if any, appends one error for ss.id.path to `errors`
// ("2 non-finite values dropped: requests.count, latency ..."). Returns how many were dropped.
size_t drop_non_finite(SourceSamples& ss, std::vector<SourceError>& errors);

}  // namespace statherd::agent
