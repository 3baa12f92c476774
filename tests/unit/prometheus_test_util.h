// Inputs for the Prometheus sink tests: points of app "web" (host "h1" below the app level),
// a counter's stats, intervals of 10 s.
#pragma once

#include <string>
#include <vector>

#include "rollup_test_util.h"

namespace statherd::server::testing {

inline SeriesPoint point(Level level, std::string metric, std::string stat, double value,
                         Tags tags = {}) {
  SeriesPoint p;
  p.level = level;
  p.app = "web";
  p.host = level == Level::App ? "" : "h1";
  p.metric = std::move(metric);
  p.stat = std::move(stat);
  p.value = value;
  p.tags = std::move(tags);
  return p;
}

inline IntervalOutput interval(int64_t start_s, std::vector<SeriesPoint> points,
                               bool reemit = false) {
  return output_of(start_s, 10, points, reemit);
}

inline std::vector<SeriesPoint> counter_points(Level level, double count) {
  return {point(level, "http.requests", "count", count),
          point(level, "http.requests", "rate", count / 10),
          point(level, "http.requests", "m1_rate", 0.5)};
}

inline bool contains(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

}  // namespace statherd::server::testing
