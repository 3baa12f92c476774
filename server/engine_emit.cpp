// Rollup emission: flush/drain intervals in time order, re-emit late-changed intervals with
// full values, expire idle series, drop intervals past the late window. The rollup of one
// interval (stats, EWMA ticks, records; sharded over the threads) is engine_rollup_shards.cpp.
#include <algorithm>
#include <chrono>

#include "common/log.h"
#include "server/engine_impl.h"

namespace statherd::server {
namespace {

// Agents keep their dedup state (last seq) at least this long: forgetting it early would let
// a late retry of an acknowledged batch count twice.
constexpr int64_t kMinAgentMemoryMs = 7LL * 24 * 3600 * 1000;
constexpr int64_t kSilentAgentMs = 3600LL * 1000;

}  // namespace

void Engine::Impl::kill_slot(uint32_t id) {
  Slot& slot = slots[id];
  slot.alive = false;
  slot_index.erase(slot.key, slot_key);
  --sources[slot.source].series;
  --st.series;
  int64_t watermark = intervals.empty() ? kNoInterval : intervals.back().start;
  for (uint32_t a : slot.agg) {
    if (a == kNone) continue;
    Aggregate& agg = aggs[a];
    if (--agg.live_slots == 0 && agg.alive) {
      agg.alive = false;
      agg_index.erase(agg.key, agg_key);
      dying_aggs.push_back({watermark, a});
    }
  }
  dying_slots.push_back({watermark, id});
}

// Idle means idle while its agent kept sending: a series or source is measured against its
// agent's latest batch, not the server's clock. So a server that was stopped or paused, or an
// agent that was down or cut off (its batches waiting in its spool), expires nothing: the
// spooled batches continue every series where it was (else each would come back as a new
// sighting, a baseline, and its increments meanwhile and the exported totals would be lost).
// An agent silent for longer than kSilentAgentMs (at least the idle timeout) is taken for gone:
// its series expire by the server's clock after all.
int64_t Engine::Impl::idle_clock(uint32_t source, int64_t now_ms) const {
  if (source == kNone || source >= sources.size() || !sources[source].alive) return now_ms;
  auto agent = agents.find(sources[source].agent_id);
  if (agent == agents.end()) return now_ms;
  const int64_t silent = std::max<int64_t>(opt.idle_timeout.count(), kSilentAgentMs);
  if (now_ms - agent->second.last_seen_ms > silent) return now_ms;
  return std::min(now_ms, agent->second.last_seen_ms);
}

void Engine::Impl::expire_idle(int64_t now_ms) {
  const int64_t idle = opt.idle_timeout.count();
  // Each source's idle clock once (an agent lookup by name each: a series has one source, and
  // a source ~100 series), then the scan of the series on the rollup's threads, read-only; the
  // series found idle are then dropped in id order, as one thread would (dropping one changes
  // no idle_clock).
  std::vector<int64_t> clock(sources.size());
  for (uint32_t i = 0; i < sources.size(); ++i) clock[i] = idle_clock(i, now_ms);
  const size_t per_chunk = std::max<size_t>(opt.min_shard_series, 1);
  const size_t chunks = pool ? std::clamp<size_t>(slots.size() / per_chunk, 1, pool->size()) : 1;
  std::vector<std::vector<uint32_t>> idle_slots(chunks);
  run_parallel(chunks, [&](size_t chunk) {
    const size_t end = slots.size() * (chunk + 1) / chunks;
    for (size_t i = slots.size() * chunk / chunks; i < end; ++i) {
      if (!slots[i].alive) continue;
      const uint32_t source = slots[i].source;
      const int64_t at = source < clock.size() ? clock[source] : idle_clock(source, now_ms);
      if (at - slots[i].last_seen_ms > idle) idle_slots[chunk].push_back(static_cast<uint32_t>(i));
    }
  });
  for (const auto& ids : idle_slots)
    for (uint32_t i : ids) kill_slot(i);
  const int64_t watermark = intervals.empty() ? kNoInterval : intervals.back().start;
  for (uint32_t i = 0; i < sources.size(); ++i) {
    SourceState& s = sources[i];
    if (!s.alive || clock[i] - s.last_seen_ms <= idle) continue;
    s.alive = false;
    source_index.erase(s.id.key());
    --st.sources;
    s.id = SourceIdentity{};  // tombstone until recycled: dying slots may still name its index
    s.agent_id.clear();
    s.order = {};
    dying_sources.push_back({watermark, i});
  }
  const int64_t agent_idle = std::max(idle, kMinAgentMemoryMs);
  const size_t before = agents.size();
  std::erase_if(agents, [&](const auto& kv) { return now_ms - kv.second.last_seen_ms > agent_idle; });
  if (agents.size() != before) rebuild_seq_mirror();
}

// Dead slots/aggregates/sources are recycled once no open interval can hold a cell of theirs.
void Engine::Impl::release_deferred() {
  const int64_t oldest = intervals.empty() ? std::numeric_limits<int64_t>::max()
                                           : intervals.front().start;
  std::erase_if(dying_slots, [&](const DeferredFree& d) {
    if (d.after_start >= oldest) return false;
    slots[d.id] = Slot{};
    free_slots.push_back(d.id);
    return true;
  });
  std::erase_if(dying_sources, [&](const DeferredFree& d) {
    if (d.after_start >= oldest) return false;
    sources[d.id] = SourceState{};
    sources[d.id].alive = false;
    free_sources.push_back(d.id);
    return true;
  });
  const size_t buried = graveyard->keys.size();
  std::erase_if(dying_aggs, [&](const DeferredFree& d) {
    if (d.after_start >= oldest) return false;
    bury(std::move(aggs[d.id].series_key));
    aggs[d.id] = Aggregate{};
    free_aggs.push_back(d.id);
    return true;
  });
  if (graveyard->keys.size() != buried) rotate_graveyard();
}

void Engine::Impl::bury(SeriesKeyRef key) {
  if (key) graveyard->keys.push_back(std::move(key));
}

void Engine::Impl::bury_all_keys() {
  for (size_t i = 0; i < aggs.size(); ++i) bury(std::move(aggs[i].series_key));
  rotate_graveyard();
}

void Engine::Impl::rotate_graveyard() {
  auto fresh = std::make_shared<KeyGraveyard>();
  graveyard->next = fresh;
  graveyard = std::move(fresh);
}

std::vector<IntervalOutput> Engine::Impl::flush(int64_t now_ms, bool include_current) {
  std::vector<IntervalOutput> out;
  expire_idle(now_ms);
  for (Interval& iv : intervals)
    if (iv.emitted && !iv.changed_slots.empty()) out.push_back(emit_interval(iv, true));

  const int64_t floor = retain_floor(now_ms);
  const int64_t current = now_ms - ((now_ms % iv_ms) + iv_ms) % iv_ms;
  auto due = [&](int64_t start) {
    return include_current ? start <= current : start + iv_ms + opt.grace.count() <= now_ms;
  };
  while (next_emit_start != kNoInterval && due(next_emit_start)) {
    bool beyond = intervals.empty() || next_emit_start > intervals.back().start;
    if (beyond && next_emit_start < floor) {  // long silence: nothing to emit before the window
      next_emit_start = floor;
      continue;
    }
    Interval& iv = interval_at(next_emit_start);
    if (!iv.emitted) {
      IntervalOutput o = emit_interval(iv, false);
      if (!o.records.empty()) out.push_back(std::move(o));
    }
    next_emit_start += iv_ms;
  }
  while (!intervals.empty() && intervals.front().emitted && intervals.front().start < floor)
    intervals.pop_front();
  release_deferred();
  pack_emitted();

  if (wal.is_open() && !recovering && !wal_external &&
      (now_ms - last_snapshot_ms >= opt.snapshot_every.count() ||
       wal.bytes() >= opt.snapshot_wal_bytes)) {
    Status s = write_snapshot(now_ms);
    if (!s) log::warn("snapshot failed (the WAL keeps growing until one succeeds): " +
                      s.error().to_string());
  }
  return out;
}

}  // namespace statherd::server
