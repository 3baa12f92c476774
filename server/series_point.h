// What the rollup hands to sinks: one interval's rolled-up values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/sample.h"

namespace statherd::server {

enum class Level : uint8_t { Process = 0, Host = 1, App = 2 };

struct SeriesPoint {
  Level level = Level::App;
  std::string app;
  std::string host;     // Host and Process levels
  int64_t pid = -1;     // Process level
  std::string metric;   // dotted metric name as the source spelled it
  Tags tags;
  std::string stat;     // "count", "rate", "m1_rate", "min", "p99", ...
  double value = 0;
  // Counter "count", distribution "count" and "sum": the series' running total since it
  // appeared (every delta ingested so far, the interval being filled included). Engine state,
  // kept by snapshot + WAL, so it continues across restarts; the Prometheus outputs export it
  // as `_count_total` / `_count` / `_sum`. Absent on every other stat.
  std::optional<double> total;
};

struct IntervalOutput {
  int64_t start_s = 0;      // interval start, unix seconds (the Graphite timestamp)
  int64_t interval_s = 10;
  bool reemit = false;      // late data changed an interval already emitted: full values again
  std::vector<SeriesPoint> points;
};

}  // namespace statherd::server
