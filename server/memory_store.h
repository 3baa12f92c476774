// The in-memory store: the last `retention` of every Graphite path at interval resolution,
// served with the JSON shapes of Graphite's /render and /metrics/find APIs. Fed like a sink.
// Not thread-safe but for path_count()/refused_paths(): the HTTP server feeds and queries it
// from its one read thread (server/http_server.cpp), never from the ingest (io) thread.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "server/graphite_pattern.h"
#include "server/read_limits.h"
#include "server/sinks/sink.h"

namespace statherd::server {

struct MemoryStoreOptions {
  std::chrono::seconds retention{3600};
  uint64_t max_paths = 1'000'000;  // new paths beyond this are refused and counted
  std::string prefix = "statherd"; // Graphite prefix, as the graphite sink uses it
};

// A Graphite time: "now", relative "-10min", "-1h", "-30s", "-2d", "-1w" (also "-5minutes",
// "-2hours", ...), absolute unix seconds, or Graphite's absolute "HH:MM_YYYYMMDD" and
// "YYYYMMDD" (midnight) forms, read as UTC. As in Graphite, 8 digits that form a valid date
// (year >= 1900) are YYYYMMDD, other digit strings are unix seconds. Returns unix seconds.
Result<int64_t> parse_graphite_time(std::string_view text, int64_t now_s);

// Graphite's default consolidation (consolidateBy avg) for maxDataPoints: when `points`
// ([[value|null, ts], ...]) holds more than `max_points`, consecutive runs of
// ceil(n / max_points) points become one point: the average of its non-null values (null if
// all are null) at the timestamp of the run's first point. max_points 0: unchanged.
nlohmann::json consolidate_datapoints(const nlohmann::json& points, size_t max_points);

class MemoryStore : public Sink {
 public:
  explicit MemoryStore(MemoryStoreOptions options);

  std::string name() const override { return "memory"; }
  // Stores every point (re-emission overwrites its slot) and forgets paths older than retention.
  void emit(const IntervalOutput& out) override;

  // /metrics/find: [{"text","id","leaf","expandable","allowChildren"}], one per distinct node.
  nlohmann::json find(std::string_view query) const;
  // /render: [{"target": PATH, "datapoints": [[VALUE|null, TS], ...]}] for every path matching
  // any target; one datapoint per interval start in [from_s, until_s], consolidated to at
  // most max_data_points (0: no limit) by consolidate_datapoints().
  nlohmann::json render(const std::vector<std::string>& targets, int64_t from_s,
                        int64_t until_s, size_t max_data_points = 0) const;

  // The same, bounded by `limits` (the HTTP API's): an error (a 413 for the caller) as soon as
  // the answer would hold more than max_paths series / nodes or max_points datapoints, or the
  // scan would take more than max_match_steps comparisons; nothing big is built before.
  Result<nlohmann::json> render(const std::vector<GraphitePattern>& targets, int64_t from_s,
                                int64_t until_s, size_t max_data_points,
                                const ReadLimits& limits) const;
  Result<nlohmann::json> find(const GraphitePattern& query, const ReadLimits& limits) const;

  // Thread-safe.
  uint64_t path_count() const { return path_count_.load(std::memory_order_relaxed); }
  uint64_t refused_paths() const { return refused_paths_.load(std::memory_order_relaxed); }

 private:
  struct Slot {
    int64_t ts = INT64_MIN;  // interval start held in this slot; INT64_MIN: empty
    double value = 0;
  };
  // retention / interval slots, indexed from the first point's interval (base_ts) and grown
  // as points arrive: a path seen once costs one slot, not a whole retention's worth.
  struct Ring {
    int64_t interval_s = 10;
    int64_t newest_ts = INT64_MIN;
    int64_t base_ts = 0;
    size_t capacity = 1;
    std::vector<Slot> slots;
    const Slot* find(int64_t ts) const;
    Slot& at(int64_t ts);
  };
  void store(const std::string& path, int64_t ts, int64_t interval_s, double value);
  void expire(int64_t newest_ts);
  nlohmann::json datapoints(const Ring& ring, int64_t from_s, int64_t until_s,
                            size_t max_data_points) const;
  size_t point_count(int64_t interval_s, int64_t from_s, int64_t until_s,
                     size_t max_data_points) const;
  // Calls fn(path, ring) for each stored path under the pattern's literal prefix; false (and
  // stops) once `steps` (decreased by the pattern's alternatives per path) would go below 0.
  template <class Fn>
  bool scan(const GraphitePattern& pattern, uint64_t& steps, Fn&& fn) const;

  MemoryStoreOptions options_;
  std::map<std::string, Ring, std::less<>> series_;
  std::atomic<uint64_t> refused_paths_{0}, path_count_{0};
  int64_t last_expire_ts_ = INT64_MIN;
};

}  // namespace statherd::server
