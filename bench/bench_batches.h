// The agent batches the server benchmarks send: `procs` processes x `series` samples per agent
// and round (60 % counters, 30 % gauges, 10 % counters with a tag, or with dists = 1 a latency
// sketch: the statherd v2 Histogram, cumulative, each round adding 20 observations), values
// advancing with the round so every interval has new deltas to roll up.
#pragma once

#include <memory>
#include <string>

#include "common/sketch.h"
#include "common/wire.h"

namespace statherd::bench {

struct Shape {
  int rounds = 30, agents = 20, procs = 50, series = 100, dists = 0;
  // Counters (tagged or not) add more in some rounds than in others: every process has a
  // period of 2, 3 or 4 rounds (by agent and process) and adds a little extra in the rounds
  // its period divides. So the sums over a host's or an app's processes (what the server
  // emits) change from interval to interval, as a real fleet's do, and the EWMA meters never
  // settle on a constant. Without it every counter adds the same amount every round, and
  // whether the meters store a new double at every point or a constant depended on how the
  // first rounds fell into the server's first intervals (docs/BENCHMARKS.md, 2026-12-04
  // evening: one binary measured ~88 or ~106 MB at 1 s).
  bool varied = false;
};

// What process p of `agent` has added over its plain rate by `round` when counters are varied:
// `extra` in every round its period (2, 3 or 4, by agent and process) divides.
inline double bench_varied_extra(const Shape& s, int agent, int p, int round, int extra) {
  if (!s.varied) return 0;
  return static_cast<double>(round / (2 + (agent + p) % 3)) * extra;
}

// The cumulative value of process p's untagged counter i (i % 10 < 6) after `round`: 0 at
// round 0, then 3 (i + 1) a round, plus i % 4 + 1 in the rounds of its period when varied.
inline double bench_counter_value(const Shape& s, int agent, int p, int i, int round) {
  return static_cast<double>(round) * (i + 1) * 3 +
         bench_varied_extra(s, agent, p, round, i % 4 + 1);
}

inline Sample bench_sample(const Shape& s, int p, int i, int round, int64_t ts_ms,
                           int agent = 0) {
  Sample m;
  m.name = "service.component.metric_" + std::to_string(i);
  m.timestamp_ms = ts_ms;
  if (i % 10 < 6) {
    m.kind = Kind::Counter;
    m.value = bench_counter_value(s, agent, p, i, round);
  } else if (i % 10 < 9) {
    m.kind = Kind::Gauge;
    m.value = (p * 7 + i + round) % 100;
  } else if (s.dists) {
    m.kind = Kind::Distribution;
    auto d = std::make_shared<Distribution>();
    d->form = Distribution::Form::Sketch;
    for (int k = 0; k <= round; ++k)
      for (int j = 0; j < 20; ++j) d->sketch.add(0.001 * (1 + (p + i + j * 7 + k) % 97));
    m.dist = std::move(d);
  } else {
    m.kind = Kind::Counter;
    m.tags = {{"code", std::to_string(200 + i % 3)}};
    m.value = static_cast<double>(round) * 11 + bench_varied_extra(s, agent, p, round, 2);
  }
  return m;
}

inline std::string make_batch(const Shape& s, int agent, int round, int64_t ts_ms) {
  Batch b;
  b.agent_id = "host-" + std::to_string(agent);
  b.seq = static_cast<uint64_t>(round) + 1;
  b.sent_ms = ts_ms;
  for (int p = 0; p < s.procs; ++p) {
    SourceSamples src;
    src.id = {b.agent_id, "app" + std::to_string(p % 5), 1000 + p, 1'700'000'000'000 + p,
              "/tmp/app-" + std::to_string(1000 + p) + ".mmstats"};
    src.fresh = true;
    src.samples.reserve(s.series);
    for (int i = 0; i < s.series; ++i)
      src.samples.push_back(bench_sample(s, p, i, round, ts_ms, agent));
    b.sources.push_back(std::move(src));
  }
  return encode_batch(b);
}

}  // namespace statherd::bench
