// Builds IntervalOutputs point by point for tests, benches and fuzzers (the engine builds
// records directly). A series (level, app, host, pid, metric, tags) gets the same SeriesKey in
// every output built here, as the engine's aggregate does, so sinks' per-key caches see one
// series across intervals. The kind follows the stats: "rate" makes a counter, "count" (without
// "rate") a distribution, anything else a gauge.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "server/series_point.h"

namespace statherd::server::testing {

inline SeriesKeyRef interned_key(const SeriesPoint& p) {
  static std::mutex mutex;
  static std::map<std::tuple<int, std::string, std::string, int64_t, std::string, Tags>,
                  SeriesKeyRef> keys;
  std::lock_guard lock(mutex);
  auto& key = keys[{static_cast<int>(p.level), p.app, p.host, p.pid, p.metric, p.tags}];
  if (!key) key = make_series_key(p.level, p.app, p.host, p.pid, p.metric, p.tags);
  return key;
}

// Appends p's stat to the last record if it is p's series, else to a new record.
inline void append_point(IntervalOutput& out, const SeriesPoint& p) {
  SeriesKeyRef key = interned_key(p);
  if (out.records.empty() || out.records.back().key != key.get()) out.add(key, SeriesKind::Gauge);
  RollupRecord& r = out.records.back();
  if (p.stat == "rate") r.kind = SeriesKind::Counter;
  if (p.stat == "count" && r.kind == SeriesKind::Gauge) r.kind = SeriesKind::Distribution;
  if (p.total && p.stat == "count") r.count_total = *p.total;
  if (p.total && p.stat == "sum") r.sum_total = *p.total;
  out.stat(p.stat, p.value);
}

inline void append_points(IntervalOutput& out, const std::vector<SeriesPoint>& points) {
  for (const SeriesPoint& p : points) append_point(out, p);
}

inline IntervalOutput output_of(int64_t start_s, int64_t interval_s,
                                const std::vector<SeriesPoint>& points, bool reemit = false) {
  IntervalOutput out;
  out.start_s = start_s;
  out.interval_s = interval_s;
  out.reemit = reemit;
  append_points(out, points);
  return out;
}

}  // namespace statherd::server::testing
