// Rollup emission: flush/drain intervals in time order, re-emit late-changed intervals with
// full values, tick EWMA meters, expire idle series, drop intervals past the late window.
#include <algorithm>
#include <chrono>

#include "common/log.h"
#include "server/engine_impl.h"
#include "server/rollup.h"

namespace statherd::server {
namespace {

// Agents keep their dedup state (last seq) at least this long: forgetting it early would let
// a late retry of an acknowledged batch count twice.
constexpr int64_t kMinAgentMemoryMs = 7LL * 24 * 3600 * 1000;
constexpr int64_t kSilentAgentMs = 3600LL * 1000;

}  // namespace

RollupRecord& Engine::Impl::add_record(IntervalOutput& out, Aggregate& a, SeriesKind kind) const {
  if (!a.series_key) a.series_key = make_series_key(a.level, a.app, a.host, a.pid, a.metric, a.tags);
  return out.add(a.series_key, kind);
}

// Counters: count and rate of this interval for every live counter series (0 when it had no
// data), and on first emission the EWMA tick with this interval's count plus late deltas that
// arrived for intervals already emitted (so the meters lose nothing).
void Engine::Impl::emit_counters(const Interval& iv, bool reemit, const std::vector<uint8_t>* only,
                                 IntervalOutput& out) {
  scratch_sum.assign(aggs.size(), 0.0);
  std::vector<uint8_t> touched(aggs.size(), 0);
  for (const Cell& c : iv.cells) {
    const Slot& slot = slots[c.slot];
    if (slot.kind != Kind::Counter) continue;
    for (uint32_t a : slot.agg) {
      if (a == kNone || (only && !(*only)[a])) continue;
      scratch_sum[a] += c.value;
      touched[a] = 1;
    }
  }
  const double seconds = static_cast<double>(iv_ms) / 1000.0;
  for (uint32_t i = 0; i < aggs.size(); ++i) {
    Aggregate& a = aggs[i];
    if (a.kind != Kind::Counter) continue;
    bool live = a.alive && a.first_start <= iv.start && !reemit;
    if (!live && !touched[i]) continue;
    double count = scratch_sum[i];
    add_record(out, a, SeriesKind::Counter).count_total = a.total_count;
    out.stat("count", count);
    out.stat("rate", count / seconds);
    if (reemit) continue;
    a.meter.tick(count + a.pending_late);
    a.pending_late = 0;
    out.stat("m1_rate", a.meter.m1.rate());
    out.stat("m5_rate", a.meter.m5.rate());
    out.stat("m15_rate", a.meter.m15.rate());
  }
}

void Engine::Impl::emit_gauges_and_dists(const Interval& iv, const std::vector<uint8_t>* only,
                                         IntervalOutput& out) {
  std::vector<std::pair<uint32_t, double>> gauges;
  std::vector<std::pair<uint32_t, const Distribution*>> dists;
  for (const Cell& c : iv.cells) {
    const Slot& slot = slots[c.slot];
    if (slot.kind == Kind::Counter) continue;
    for (uint32_t a : slot.agg) {
      if (a == kNone || (only && !(*only)[a])) continue;
      if (slot.kind == Kind::Gauge) gauges.emplace_back(a, c.value);
      else if (c.dist != kNone) dists.emplace_back(a, &iv.dists[c.dist]);
    }
  }
  auto by_agg = [](const auto& x, const auto& y) { return x.first < y.first; };
  std::stable_sort(gauges.begin(), gauges.end(), by_agg);
  std::stable_sort(dists.begin(), dists.end(), by_agg);
  std::vector<double> values;
  StatValues stats;
  for (size_t i = 0; i < gauges.size();) {
    size_t j = i;
    values.clear();
    for (; j < gauges.size() && gauges[j].first == gauges[i].first; ++j)
      values.push_back(gauges[j].second);
    Aggregate& a = aggs[gauges[i].first];
    stats.clear();
    if (a.level == Level::Process) stats.emplace_back("last", values.back());
    else gauge_stats(values, stats);
    add_record(out, a, SeriesKind::Gauge);
    for (auto& [name, v] : stats) out.stat(std::move(name), v);
    i = j;
  }
  std::vector<const Distribution*> group;
  for (size_t i = 0; i < dists.size();) {
    size_t j = i;
    group.clear();
    for (; j < dists.size() && dists[j].first == dists[i].first; ++j) group.push_back(dists[j].second);
    stats.clear();
    distribution_stats(group, stats);
    Aggregate& a = aggs[dists[i].first];
    RollupRecord& r = add_record(out, a, SeriesKind::Distribution);
    r.count_total = a.total_count;
    for (auto& [name, v] : stats) {
      if (name == "sum") r.sum_total = a.total_sum;  // unknown sum this interval: no total
      out.stat(std::move(name), v);
    }
    i = j;
  }
}

IntervalOutput Engine::Impl::emit_interval(Interval& iv, bool reemit) {
  IntervalOutput out;
  out.start_s = iv.start / 1000;
  out.interval_s = iv_ms / 1000;
  out.reemit = reemit;
  if (reemit) {  // full values of every series that late data touched
    scratch_mark.assign(aggs.size(), 0);
    for (uint32_t s : iv.changed_slots)
      for (uint32_t a : slots[s].agg)
        if (a != kNone) scratch_mark[a] = 1;
    emit_counters(iv, true, &scratch_mark, out);
    emit_gauges_and_dists(iv, &scratch_mark, out);
  } else {
    emit_counters(iv, false, nullptr, out);
    emit_gauges_and_dists(iv, nullptr, out);
    iv.emitted = true;
  }
  iv.changed_slots.clear();
  return out;
}

void Engine::Impl::kill_slot(uint32_t id) {
  Slot& slot = slots[id];
  slot.alive = false;
  slot_index.erase(slot.key);
  --sources[slot.source].series;
  --st.series;
  int64_t watermark = intervals.empty() ? kNoInterval : intervals.back().start;
  for (uint32_t a : slot.agg) {
    if (a == kNone) continue;
    Aggregate& agg = aggs[a];
    if (--agg.live_slots == 0 && agg.alive) {
      agg.alive = false;
      agg_index.erase(agg.key);
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
  for (uint32_t i = 0; i < slots.size(); ++i)
    if (slots[i].alive && idle_clock(slots[i].source, now_ms) - slots[i].last_seen_ms > idle)
      kill_slot(i);
  const int64_t watermark = intervals.empty() ? kNoInterval : intervals.back().start;
  for (uint32_t i = 0; i < sources.size(); ++i) {
    SourceState& s = sources[i];
    if (!s.alive || idle_clock(i, now_ms) - s.last_seen_ms <= idle) continue;
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
  std::erase_if(dying_aggs, [&](const DeferredFree& d) {
    if (d.after_start >= oldest) return false;
    aggs[d.id] = Aggregate{};
    free_aggs.push_back(d.id);
    return true;
  });
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

  if (wal.is_open() && !recovering && !wal_external &&
      (now_ms - last_snapshot_ms >= kSnapshotEveryMs || wal.bytes() >= kSnapshotWalBytes)) {
    Status s = write_snapshot(now_ms);
    if (!s) log::warn("snapshot failed (the WAL keeps growing until one succeeds): " +
                      s.error().to_string());
  }
  return out;
}

}  // namespace statherd::server
