#include "server/shard_gate.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "common/log.h"
#include "common/shard_map.h"

namespace statherd::server {

namespace {

// What keeps a filtered copy's keys alive: the original's pin and keys.
struct KeepAlive {
  std::shared_ptr<const void> pin;
  std::vector<SeriesKeyRef> keys;
};

IntervalOutput empty_like(const IntervalOutput& src) {
  IntervalOutput out;
  out.start_s = src.start_s;
  out.interval_s = src.interval_s;
  out.reemit = src.reemit;
  return out;
}

void keep_keys_of(IntervalOutput& dst, const IntervalOutput& src) {
  if (src.pin || !src.keys.empty())
    dst.pin = std::make_shared<KeepAlive>(KeepAlive{src.pin, src.keys});
}

void copy_record(IntervalOutput& dst, const IntervalOutput& src, const RollupRecord& r) {
  RollupRecord& copy = dst.add_pinned(r.key, r.kind);
  copy.count_total = r.count_total;
  copy.sum_total = r.sum_total;
  for (const Stat& s : src.stats_of(r)) dst.stat_interned(s.name, s.value);
}

std::vector<uint32_t> sorted_unique(std::vector<uint32_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace

bool own_self_metric(const SeriesKey& key) {
  return key.app == "self" && key.metric.rfind("server.", 0) == 0;
}

ShardGate::ShardGate(EmitViews& views, size_t max_held_intervals, WallClockMs wall_ms)
    : views_(views), max_held_(std::max<size_t>(max_held_intervals, 1)), wall_ms_(std::move(wall_ms)) {
  if (!wall_ms_)
    wall_ms_ = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
}

ShardGateStats ShardGate::stats() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

std::vector<IntervalOutput> ShardGate::pass(const IntervalOutput& out) {
  std::lock_guard lock(stats_mu_);  // the only writer; a reader waits for one pass at most
  const auto now = std::chrono::steady_clock::now();  // one reading for the whole pass
  std::vector<IntervalOutput> to_sinks;
  std::set<uint32_t> blocked;  // shards with records still held: newer ones wait behind them
  catch_up(to_sinks, now, blocked);

  const int64_t start_ms = out.start_s * 1000;
  const int64_t step_ms = std::max<int64_t>(out.interval_s, 1) * 1000;
  // The drain's last interval, not over yet: partial here, emitted whole by a replica.
  const bool unfinished = start_ms + step_ms > wall_ms_();
  if (!out.reemit) newest_start_ms_ = std::max(newest_start_ms_, start_ms);
  const std::optional<EmitView> view = views_.view_at(start_ms, now);
  IntervalOutput now_out = empty_like(out);
  Held held;
  held.out = empty_like(out);
  held.done_at_ms = out.reemit ? newest_start_ms_ + step_ms : start_ms;
  std::vector<uint32_t> emitted_shards;
  for (const RollupRecord& r : out.records) {
    if (own_self_metric(*r.key)) {
      copy_record(now_out, out, r);
      continue;
    }
    const uint64_t hash = cluster::series_hash(r.key->app, r.key->metric, r.key->tags);
    ShardRole role = ShardRole::Replica;  // no map yet: held for the first map's leaders
    uint32_t shard = 0;
    if (view && view->shards > 0) {
      shard = cluster::shard_of(hash, view->shards);
      role = view->role[shard];
      if (role == ShardRole::Emit && (unfinished || blocked.count(shard))) role = ShardRole::Replica;
    }
    switch (role) {
      case ShardRole::Emit:
        copy_record(now_out, out, r);
        emitted_shards.push_back(shard);
        break;
      case ShardRole::Replica:
        copy_record(held.out, out, r);
        held.hash.push_back(hash);
        break;
      case ShardRole::None:
        ++stats_.not_owned_records;
        break;
    }
  }
  if (!now_out.records.empty()) {
    keep_keys_of(now_out, out);
    to_sinks.push_back(std::move(now_out));
  }
  if (view && !emitted_shards.empty())
    views_.emitted(view->epoch, sorted_unique(std::move(emitted_shards)), start_ms);
  if (!held.out.records.empty()) {
    keep_keys_of(held.out, out);
    held.left = held.hash.size();
    held.gone.assign(held.left, false);
    hold(std::move(held));
  }
  count_held();
  return to_sinks;
}

// The held intervals, oldest first: records this server may emit now go to the sinks (unless
// an older record of their shard stays held), those its leader has recorded go, the rest stay.
void ShardGate::catch_up(std::vector<IntervalOutput>& to_sinks,
                         std::chrono::steady_clock::time_point now, std::set<uint32_t>& blocked) {
  for (Held& h : held_) {
    const int64_t start_ms = h.out.start_s * 1000;
    const std::optional<EmitView> view = views_.view_at(start_ms, now);
    if (!view || view->shards == 0) continue;
    IntervalOutput now_out = empty_like(h.out);
    std::vector<uint32_t> emitted_shards;
    for (size_t i = 0; i < h.hash.size(); ++i) {
      if (h.gone[i]) continue;
      const uint32_t shard = cluster::shard_of(h.hash[i], view->shards);
      const RollupRecord& r = h.out.records[i];
      if (view->role[shard] == ShardRole::None) {
        ++stats_.not_owned_records;
      } else if (view->emitted_ms[shard] != kNeverEmitted &&
                 view->emitted_ms[shard] >= h.done_at_ms) {
        ++stats_.left_to_leader;
      } else if (view->role[shard] == ShardRole::Emit && !blocked.count(shard)) {
        copy_record(now_out, h.out, r);
        emitted_shards.push_back(shard);
        ++stats_.caught_up_records;
      } else {
        blocked.insert(shard);  // still held: its shard's newer records wait behind it
        continue;
      }
      h.gone[i] = true;
      --h.left;
    }
    if (!now_out.records.empty()) {
      now_out.pin = h.out.pin;
      to_sinks.push_back(std::move(now_out));
      views_.emitted(view->epoch, sorted_unique(std::move(emitted_shards)), start_ms);
    }
  }
  std::erase_if(held_, [](const Held& h) { return h.left == 0; });
}

// Bounded by distinct interval starts (a re-emission shares its interval's), oldest dropped.
void ShardGate::hold(Held held) {
  held_.push_back(std::move(held));
  for (;;) {
    std::set<int64_t> starts;
    for (const Held& h : held_) starts.insert(h.out.start_s);
    if (starts.size() <= max_held_) break;
    const int64_t oldest = *starts.begin();
    uint64_t records = 0;
    std::erase_if(held_, [&](const Held& h) {
      if (h.out.start_s != oldest) return false;
      records += h.left;
      return true;
    });
    stats_.dropped_records += records;
    const auto now = std::chrono::steady_clock::now();
    if (last_drop_log_ != std::chrono::steady_clock::time_point{} &&
        now - last_drop_log_ < std::chrono::minutes(1)) {
      unlogged_drops_ += records;
      continue;
    }
    log::warn("cluster: " + std::to_string(records) + " records of interval " +
              std::to_string(oldest) + " (unix s) were held for longer than " +
              std::to_string(max_held_) + " intervals without this server or their leader "
              "emitting them: dropped from here (after a restart: old intervals replayed from "
              "the WAL, which their leaders emitted)" +
              (unlogged_drops_ ? "; " + std::to_string(unlogged_drops_) +
                                     " more records dropped since the last message"
                               : std::string()) +
              " (at most one message a minute; emit.dropped_records in /api/v1/cluster)");
    last_drop_log_ = now;
    unlogged_drops_ = 0;
  }
}

void ShardGate::count_held() {
  std::set<int64_t> starts;
  stats_.held_records = 0;
  for (const Held& h : held_) {
    starts.insert(h.out.start_s);
    stats_.held_records += h.left;
  }
  stats_.held_intervals = starts.size();
}

}  // namespace statherd::server
