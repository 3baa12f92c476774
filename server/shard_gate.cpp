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

ShardGate::ShardGate(EmitViews& views, size_t max_held_intervals)
    : views_(views), max_held_(std::max<size_t>(max_held_intervals, 1)) {}

ShardGateStats ShardGate::stats() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

std::vector<IntervalOutput> ShardGate::pass(const IntervalOutput& out) {
  std::lock_guard lock(stats_mu_);  // the only writer; a reader waits for one pass at most
  std::vector<IntervalOutput> to_sinks;
  catch_up(to_sinks);

  const int64_t start_ms = out.start_s * 1000;
  const std::optional<EmitView> view = views_.view_at(start_ms);
  IntervalOutput now = empty_like(out);
  Held held;
  held.out = empty_like(out);
  std::vector<uint32_t> emitted_shards;
  for (const RollupRecord& r : out.records) {
    if (own_self_metric(*r.key)) {
      copy_record(now, out, r);
      continue;
    }
    const uint64_t hash = cluster::series_hash(r.key->app, r.key->metric, r.key->tags);
    ShardRole role = ShardRole::Replica;  // no map yet: held for the first map's leaders
    uint32_t shard = 0;
    if (view && view->shards > 0) {
      shard = cluster::shard_of(hash, view->shards);
      role = view->role[shard];
    }
    switch (role) {
      case ShardRole::Emit:
        copy_record(now, out, r);
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
  if (!now.records.empty()) {
    keep_keys_of(now, out);
    to_sinks.push_back(std::move(now));
  }
  if (view && !emitted_shards.empty())
    views_.emitted(view->epoch, sorted_unique(std::move(emitted_shards)), start_ms);
  if (!held.out.records.empty()) {
    keep_keys_of(held.out, out);
    held.left = held.hash.size();
    held.gone.assign(held.left, false);
    hold(std::move(held));
  }
  return to_sinks;
}

// The held intervals, oldest first: records this server may emit now go to the sinks, those
// its leader has recorded go, the rest stay.
void ShardGate::catch_up(std::vector<IntervalOutput>& to_sinks) {
  for (Held& h : held_) {
    const int64_t start_ms = h.out.start_s * 1000;
    const std::optional<EmitView> view = views_.view_at(start_ms);
    if (!view || view->shards == 0) continue;
    IntervalOutput now = empty_like(h.out);
    std::vector<uint32_t> emitted_shards;
    for (size_t i = 0; i < h.hash.size(); ++i) {
      if (h.gone[i]) continue;
      const uint32_t shard = cluster::shard_of(h.hash[i], view->shards);
      const RollupRecord& r = h.out.records[i];
      if (view->role[shard] == ShardRole::None) {
        ++stats_.not_owned_records;
      } else if (view->emitted_ms[shard] != kNeverEmitted && view->emitted_ms[shard] >= start_ms) {
        ++stats_.left_to_leader;
      } else if (view->role[shard] == ShardRole::Emit) {
        copy_record(now, h.out, r);
        emitted_shards.push_back(shard);
        ++stats_.caught_up_records;
      } else {
        continue;  // still held
      }
      h.gone[i] = true;
      --h.left;
    }
    if (!now.records.empty()) {
      now.pin = h.out.pin;
      to_sinks.push_back(std::move(now));
      views_.emitted(view->epoch, sorted_unique(std::move(emitted_shards)), start_ms);
    }
  }
  std::erase_if(held_, [](const Held& h) { return h.left == 0; });
  stats_.held_intervals = held_.size();
  stats_.held_records = 0;
  for (const Held& h : held_) stats_.held_records += h.left;
}

void ShardGate::hold(Held held) {
  held_.push_back(std::move(held));
  while (held_.size() > max_held_) {
    const Held& oldest = held_.front();
    stats_.dropped_records += oldest.left;
    log::warn("cluster: " + std::to_string(oldest.left) + " records of interval " +
              std::to_string(oldest.out.start_s) + " were held for longer than " +
              std::to_string(max_held_) + " intervals without this server or their leader "
              "emitting them: dropped (Graphite and remote_write will not get them from here)");
    held_.pop_front();
  }
  stats_.held_intervals = held_.size();
  stats_.held_records = 0;
  for (const Held& h : held_) stats_.held_records += h.left;
}

}  // namespace statherd::server
