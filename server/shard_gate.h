// Which records of an interval this server hands to Graphite and remote_write when it is one of
// a cluster (issue #13, docs/CLUSTER.md "Who emits"): only those of the shards it may emit (it
// holds their leader key, fenced: server/shard_leadership.h). Every replica computes the same
// rollups; one emits. The records of a shard this server holds a replica of but does not lead
// are kept (held) until the leader has recorded that interval as emitted
// (`emitted/<epoch>/<shard>` in etcd), and are emitted by this server, oldest first, if it
// gains the lead before that: the intervals a dead leader did not emit, and those of the one
// TTL a new leader waits, reach the sinks once. Records of shards it holds no replica of (its
// agents sent them before they routed by the map) are not emitted. The server's own
// self-metrics (app "self", server.*) are each server's own: always emitted.
//
// Held intervals are bounded (max_held_intervals, oldest dropped first, counted and logged):
// with etcd out of reach for longer than that, no server may emit, and the oldest intervals
// of the outage never reach Graphite or remote_write (they stay in the server's own history,
// /render).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "server/rollup_record.h"

namespace statherd::server {

enum class ShardRole : uint8_t {
  None,     // not a replica of the shard: its records are not this server's to emit
  Replica,  // a replica that may not emit it now: held
  Emit,     // the leader, fenced: emitted
};

inline constexpr int64_t kNeverEmitted = std::numeric_limits<int64_t>::min();

// The map in force for one interval, as this server sees it.
struct EmitView {
  uint64_t epoch = 0;
  uint32_t shards = 0;
  std::vector<ShardRole> role;      // [shard]
  std::vector<int64_t> emitted_ms;  // [shard]: the last interval start its leader emitted
                                    // (etcd's record or this server's own), kNeverEmitted
};

// What the gate asks of the cluster (ClusterCoordinator; tests give their own).
class EmitViews {
 public:
  virtual ~EmitViews() = default;
  // The view for the interval starting at `interval_start_ms` at steady time `now` (one pass
  // of the gate asks with one `now`, so the fencing does not change in the middle of a pass);
  // nullopt: no map yet.
  virtual std::optional<EmitView> view_at(int64_t interval_start_ms,
                                          std::chrono::steady_clock::time_point now) const = 0;
  // These shards of `epoch` were handed to the sinks up to the interval starting at
  // `interval_start_ms` (recorded in etcd by the next round).
  virtual void emitted(uint64_t epoch, const std::vector<uint32_t>& shards,
                       int64_t interval_start_ms) = 0;
};

struct ShardGateStats {
  uint64_t held_intervals = 0, held_records = 0;  // now
  uint64_t caught_up_records = 0;   // held, then emitted by this server after it gained the lead
  uint64_t left_to_leader = 0;      // held, then dropped: the leader recorded the interval
  uint64_t dropped_records = 0;     // held past max_held_intervals: never emitted from here
  uint64_t not_owned_records = 0;   // of shards this server holds no replica of
};

// Whether a record is this server's own self-metrics (always emitted).
bool own_self_metric(const SeriesKey& key);

// The rules of pass(), each for a defect a review found:
//   - one steady-clock reading per pass: the fencing cannot change between the held intervals
//     and the current one;
//   - a shard with records still held is "blocked": its newer records are held behind them
//     (whatever their map), so each series reaches the sinks in time order (remote_write
//     refuses a sample older than one it has);
//   - an interval that has not ended yet (the drain's last, partial one) is never emitted in a
//     cluster: a replica emits it whole;
//   - a held re-emission (late data) goes only once its leader has recorded an interval rolled
//     up after it, not merely one that starts later;
//   - the bound counts distinct interval starts, so re-emissions cannot push out intervals.
class ShardGate {
 public:
  using WallClockMs = std::function<int64_t()>;
  ShardGate(EmitViews& views, size_t max_held_intervals, WallClockMs wall_ms = {});

  // What the Graphite and remote_write sinks get for `out`, in order: the held intervals this
  // server may emit now (oldest first), then `out`'s records it may emit (none: no output).
  // Called from the pipeline thread only.
  std::vector<IntervalOutput> pass(const IntervalOutput& out);

  ShardGateStats stats() const;  // thread-safe

 private:
  struct Held {
    IntervalOutput out;             // the records held, with what keeps their keys alive
    std::vector<uint64_t> hash;     // [record]: the series hash (the shard: hash % shards)
    std::vector<bool> gone;         // [record]: emitted or dropped since
    size_t left = 0;
    // Dropped once the shard's leader recorded an interval starting at or after this: the
    // interval's own start, or, for a re-emission, the interval after the newest one rolled
    // up when it was made.
    int64_t done_at_ms = 0;
  };
  void catch_up(std::vector<IntervalOutput>& to_sinks, std::chrono::steady_clock::time_point now,
                std::set<uint32_t>& blocked);
  void hold(Held held);
  void count_held();

  EmitViews& views_;
  const size_t max_held_;
  WallClockMs wall_ms_;
  int64_t newest_start_ms_ = 0;  // the newest interval (not a re-emission) passed so far
  // Drops are logged at most once a minute (a restart replays many old intervals at once).
  std::chrono::steady_clock::time_point last_drop_log_{};
  uint64_t unlogged_drops_ = 0;
  std::deque<Held> held_;
  mutable std::mutex stats_mu_;  // stats_ is written on the pipeline thread, read on others
  ShardGateStats stats_;
};

}  // namespace statherd::server
