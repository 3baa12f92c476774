// The server's self-metrics through its own pipeline: every `statherd_server_*` family of
// ServerSelfMetrics (what GET /metrics shows) becomes a sample of one source whose app is
// "self", so it is rolled up and sent to every sink like an agent's data, under
// <prefix>.self.server.* in Graphite (statherd.self.server.batches.count ...). The agents'
// self-metrics arrive the same way under self.agent.*. Counters keep their running total
// (the engine turns them into per-interval counts and rates), gauges their current value.
#pragma once

#include <prometheus/metric_family.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/sample.h"

namespace statherd::server {

// "statherd_server_graphite_lines_sent_total" (counter) -> "server.graphite_lines_sent";
// "statherd_server_series" (gauge) -> "server.series". Labels become tags. Families of other
// names or types are skipped.
SourceSamples self_samples_from_families(const std::vector<prometheus::MetricFamily>& families,
                                         const SourceIdentity& id, int64_t now_ms);

}  // namespace statherd::server
