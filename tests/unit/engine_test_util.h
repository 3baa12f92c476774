// Helpers for the engine tests: build wire batches and look up emitted points.
#pragma once

#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/wire.h"
#include "server/engine.h"
#include "temp_dir.h"

namespace statherd::server::testing {

inline Sample counter(const std::string& name, double v, int64_t ts) {
  Sample s;
  s.name = name;
  s.kind = Kind::Counter;
  s.value = v;
  s.timestamp_ms = ts;
  return s;
}
inline Sample gauge(const std::string& name, double v, int64_t ts) {
  Sample s = counter(name, v, ts);
  s.kind = Kind::Gauge;
  return s;
}
inline Sample dist(const std::string& name, Distribution d, int64_t ts) {
  Sample s = counter(name, 0, ts);
  s.kind = Kind::Distribution;
  s.dist = std::make_shared<const Distribution>(std::move(d));
  return s;
}

inline SourceSamples source(int64_t pid, std::vector<Sample> samples, bool fresh = false,
                            const std::string& host = "h1") {
  SourceSamples ss;
  ss.id.host = host;
  ss.id.app = "web";
  ss.id.pid = pid;
  ss.id.start_time_ms = 1000 + pid;
  ss.id.path = "/tmp/web-" + std::to_string(pid) + ".mmstats";
  ss.fresh = fresh;
  ss.samples = std::move(samples);
  return ss;
}

inline std::string batch(const std::string& agent, uint64_t seq, std::vector<SourceSamples> src) {
  Batch b;
  b.agent_id = agent;
  b.seq = seq;
  b.sent_ms = 0;
  b.sources = std::move(src);
  return encode_batch(b);
}

// The value of (level, metric, stat) in the output for interval start_s (last one wins).
inline std::optional<double> point(const std::vector<IntervalOutput>& outs, int64_t start_s,
                                   Level level, const std::string& metric, const std::string& stat,
                                   std::optional<bool> reemit = std::nullopt) {
  std::optional<double> v;
  for (const auto& o : outs) {
    if (o.start_s != start_s || (reemit && o.reemit != *reemit)) continue;
    for (const auto& p : flat_points(o))
      if (p.level == level && p.metric == metric && p.stat == stat) v = p.value;
  }
  return v;
}

}  // namespace statherd::server::testing
