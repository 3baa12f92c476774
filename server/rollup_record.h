// What the rollup hands to every sink (issue #10 item 3): per series and interval one record.
// The series' identity is a SeriesKey built once with the engine's aggregate (at ingest, or at
// snapshot load), and shared (immutable) by every record of that series: a sink caches what it derives from a key
// (a Graphite path, Prometheus series, a store slot) under SeriesKey::id and never rebuilds it.
// The record says what kind of series it is; no sink guesses a kind from stat names.
#pragma once

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/sample.h"

namespace statherd::server {

enum class Level : uint8_t { Process = 0, Host = 1, App = 2 };

// "process", "host", "app" (Prometheus' `level` label, log lines).
std::string_view level_name(Level level);

// One rolled-up series: a process's, a host's (sum over its processes) or an app's (over hosts).
// Made by make_series_key() and shared through SeriesKeyRef (an intrusive count: no control
// block, and a sink can take a reference from a record's plain pointer).
struct SeriesKey {
  uint64_t id = 0;      // unique for the process' lifetime (never reused): sinks' cache key
  Level level = Level::App;
  mutable std::atomic<uint32_t> refs{0};  // SeriesKeyRef's count (in the padding after level)
  std::string app;
  std::string host;     // Host and Process levels
  int64_t pid = -1;     // Process level
  std::string metric;   // dotted metric name as the source spelled it
  Tags tags;
};

// Shared ownership of a SeriesKey (immutable once made), like std::shared_ptr<const SeriesKey>.
class SeriesKeyRef {
 public:
  SeriesKeyRef() = default;
  SeriesKeyRef(std::nullptr_t) {}  // NOLINT(google-explicit-constructor): as shared_ptr
  // Takes a reference to a key another SeriesKeyRef owns (a record's key).
  explicit SeriesKeyRef(const SeriesKey* key) : key_(key) { acquire(); }
  SeriesKeyRef(const SeriesKeyRef& other) : key_(other.key_) { acquire(); }
  SeriesKeyRef(SeriesKeyRef&& other) noexcept : key_(std::exchange(other.key_, nullptr)) {}
  SeriesKeyRef& operator=(const SeriesKeyRef& other) {
    SeriesKeyRef(other).swap(*this);
    return *this;
  }
  SeriesKeyRef& operator=(SeriesKeyRef&& other) noexcept {
    SeriesKeyRef(std::move(other)).swap(*this);
    return *this;
  }
  ~SeriesKeyRef() { release(); }

  void swap(SeriesKeyRef& other) noexcept { std::swap(key_, other.key_); }
  const SeriesKey* get() const { return key_; }
  const SeriesKey& operator*() const { return *key_; }
  const SeriesKey* operator->() const { return key_; }
  explicit operator bool() const { return key_ != nullptr; }
  uint32_t use_count() const { return key_ ? key_->refs.load(std::memory_order_relaxed) : 0; }
  friend bool operator==(const SeriesKeyRef& a, const SeriesKeyRef& b) { return a.key_ == b.key_; }

 private:
  void acquire() {
    if (key_) key_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  void release() {
    if (key_ && key_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete key_;
  }
  const SeriesKey* key_ = nullptr;
};

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

// Whether two Stat names are one name. A record's names come from a few literals and the
// interned table, so the sinks' caches, which keep the first spelling they saw, mostly meet
// the same address: no memcmp call per stat of every record of every interval.
inline bool same_stat_name(std::string_view a, std::string_view b) {
  return a.data() == b.data() ? a.size() == b.size() : a == b;
}

struct RollupRecord {
  // Its series. Kept alive by the IntervalOutput the record is in (`keys` or `pin`) for as
  // long as that output lives; a sink that keeps a key longer takes a SeriesKeyRef(key).
  const SeriesKey* key = nullptr;
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
  // What keeps the records' keys alive: the keys add() was given, and (the engine's records,
  // which hold no count of their own: a count per record is two atomic operations on a cold
  // line per series and interval) whatever the engine pins for them (Engine::Impl::graveyard).
  std::vector<SeriesKeyRef> keys;
  std::shared_ptr<const void> pin;

  // Appends a record; stat() then appends to it.
  RollupRecord& add(SeriesKeyRef key, SeriesKind kind) {
    const SeriesKey* k = key.get();
    keys.push_back(std::move(key));  // first: no record is left with a key nothing owns
    return add_pinned(k, kind);
  }
  // Appends a record whose key `pin` keeps alive.
  RollupRecord& add_pinned(const SeriesKey* key, SeriesKind kind) {
    RollupRecord& r = records.emplace_back();
    r.key = key;
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
