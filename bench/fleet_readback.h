// What bench/fleet and bench/cluster_fleet share: a latency quantile and the app-level counter
// read back from a server's /render.
#pragma once

#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_daemon.h"

namespace statherd::bench {

inline double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

// The app-level count of metric_0 over the run, summed from /render (-1: no answer).
inline double arrived_count(const ServerDaemon& server) {
  auto r = server.get("/render?target=statherd.app0.service.component.metric_0.count"
                      "&from=-1h&format=json");
  if (r.status != 200) return -1;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  double sum = 0;
  if (j.is_array() && !j.empty())
    for (const auto& p : j[0]["datapoints"])
      if (p[0].is_number()) sum += p[0].get<double>();
  return sum;
}

}  // namespace statherd::bench
