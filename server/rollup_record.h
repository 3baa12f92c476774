// What the rollup hands to every sink (issue #10 item 3): per series and interval one record.
// The series' identity is a SeriesKey built once with the engine's aggregate (at ingest, or at
// snapshot load), and shared (immutable) by every record of that series: a sink caches what it derives from a key
// (a Graphite path, Prometheus series, a store slot) under SeriesKey::id and never rebuilds it.
// The record says what kind of series it is; no sink guesses a kind from stat names.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/sample.h"

namespace statherd::server {

enum class Level : uint8_t { Process = 0, Host = 1, App = 2 };

// "process", "host", "app" (Prometheus' `level` label, log lines).
std::string_view level_name(Level level);

// One rolled-up series: a process's, a host's (sum over its processes) or an app's (over hosts).
struct SeriesKey {
  uint64_t id = 0;      // unique for the process' lifetime (never reused): sinks' cache key
  Level level = Level::App;
  std::string app;
  std::string host;     // Host and Process levels
  int64_t pid = -1;     // Process level
  std::string metric;   // dotted metric name as the source spelled it
  Tags tags;
};
using SeriesKeyRef = std::shared_ptr<const SeriesKey>;

// A fresh id for a new key (thread-safe).
uint64_t next_series_key_id();
SeriesKeyRef make_series_key(Level level, std::string app, std::string host, int64_t pid,
                             std::string metric, Tags tags);

// Counter: stats count, rate (this interval's delta and per-second rate), then m1_rate, m5_rate,
// m15_rate (EWMA; absent in a re-emission). Gauge: last (process level) or min, max, mean, sum,
// p50, p90, p99 over sources. Distribution: count, sum (this interval's deltas), min, max, mean,
// quantiles (server/rollup.h); sum/mean absent when the interval's sum is unknown.
enum class SeriesKind : uint8_t { Counter, Gauge, Distribution };
std::string_view series_kind_name(SeriesKind kind);  // "counter", "gauge", "distribution"

// A stat's name lives as long as the process: a literal, or interned by stat_name(). A Stat
// is then 24 trivially copyable bytes: an interval's ~500k stats (400k-series fleet) are
// neither constructed nor destroyed one by one (issue #10).
// The interned copy of `name` (thread-safe); "" once kMaxStatNames distinct names exist and
// `name` is not one of them (the caller then emits no such stat).
inline constexpr size_t kMaxStatNames = 4096;
std::string_view stat_name(std::string_view name);

struct Stat {
  std::string_view name;  // "count", "rate", "m1_rate", "min", "p99", ...: never dangles
  double value = 0;
};

struct RollupRecord {
  SeriesKeyRef key;
  SeriesKind kind = SeriesKind::Gauge;
  uint32_t first_stat = 0, stat_count = 0;  // into IntervalOutput::stats
  // Cumulative running totals since the series appeared (every delta ingested so far, the
  // interval being filled included): counters' count, distributions' count and sum. Engine
  // state (snapshot + WAL), so they continue across restarts; the Prometheus outputs export
  // them as `_count_total` / `_count` / `_sum`. NaN on gauges, and where no total is known
  // (sum_total whenever the record has no "sum" stat: the interval's sum is unknown).
  // Every stat is the interval's own value: a delta for count/sum, never cumulative.
  double count_total = NAN, sum_total = NAN;
};

struct IntervalOutput {
  int64_t start_s = 0;      // interval start, unix seconds (the Graphite timestamp)
  int64_t interval_s = 10;
  bool reemit = false;      // late data changed an interval already emitted: full values again
  std::vector<RollupRecord> records;
  std::vector<Stat> stats;  // every record's stats, record after record

  // Appends a record; stat() then appends to it.
  RollupRecord& add(SeriesKeyRef key, SeriesKind kind) {
    RollupRecord& r = records.emplace_back();
    r.key = std::move(key);
    r.kind = kind;
    r.first_stat = static_cast<uint32_t>(stats.size());
    return r;
  }
  // `name` need not outlive the call: it is interned (a name the table refuses is skipped).
  void stat(std::string_view name, double value) {
    if (const std::string_view interned = stat_name(name); !interned.empty())
      stat_interned(interned, value);
  }
  // `name` is a literal or stat_name()'s: no lookup (the rollup's path).
  void stat_interned(std::string_view name, double value) {
    stats.push_back(Stat{name, value});
    ++records.back().stat_count;
  }
  std::span<const Stat> stats_of(const RollupRecord& r) const {
    return {stats.data() + r.first_stat, r.stat_count};
  }
  size_t point_count() const { return stats.size(); }
};

}  // namespace statherd::server
