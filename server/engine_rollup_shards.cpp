// The rollup of one interval, sharded by series over the engine's threads (issue #10 item 2).
// Aggregates are cut into contiguous shards of ids. Two fork-join rounds:
//   1. bucket_cells: the interval's cells are cut into chunks (one per thread); each chunk
//      lists, per shard, every (aggregate, value) its cells feed, in cell order;
//   2. per shard: counter sums, gauge/distribution grouping and stats, EWMA ticks and the
//      records, into the shard's own output; a shard reads the lists of every chunk in chunk
//      order, so each aggregate sees its cells in arrival order (the same floating-point sums).
// The shards' outputs are then joined section by section (counters, gauges, distributions),
// shard after shard: records in ascending aggregate id within each section, as one thread
// emits them. New series keys get their ids after the join, in that order. So the output does
// not depend on the number of threads, bit for bit.
#include <algorithm>
#include <iterator>

#include "server/engine_impl.h"
#include "server/rollup.h"

namespace statherd::server {
namespace {

enum Section { kCounters = 0, kGauges = 1, kDists = 2 };

// Shards per thread: a shard full of distributions costs more than one of counters, so the
// threads take shards one by one (deterministic output whichever thread takes which).
constexpr size_t kShardsPerThread = 4;

void append_output(IntervalOutput& out, IntervalOutput&& part) {
  const auto base = static_cast<uint32_t>(out.stats.size());
  for (RollupRecord& r : part.records) {
    r.first_stat += base;
    out.records.push_back(std::move(r));
  }
  out.stats.insert(out.stats.end(), std::make_move_iterator(part.stats.begin()),
                   std::make_move_iterator(part.stats.end()));
}

}  // namespace

void Engine::Impl::run_parallel(size_t n, const std::function<void(size_t)>& task) {
  if (pool) {
    pool->run(n, task);
    return;
  }
  for (size_t i = 0; i < n; ++i) task(i);
}

RollupRecord& Engine::Impl::add_record(IntervalOutput& out, Aggregate& a, SeriesKind kind,
                                       std::vector<std::shared_ptr<SeriesKey>>& created) const {
  if (!a.series_key) {
    auto key = std::make_shared<SeriesKey>();  // id given after the join (emit_interval)
    key->level = a.level;
    key->app = a.app;
    key->host = a.host;
    key->pid = a.pid;
    key->metric = a.metric;
    key->tags = a.tags;
    created.push_back(key);
    a.series_key = std::move(key);
  }
  return out.add(a.series_key, kind);
}

RollupPlan Engine::Impl::rollup_plan(size_t cells) const {
  const size_t threads = pool ? pool->size() : 1;
  RollupPlan plan;
  const size_t n = std::max<size_t>(aggs.size(), 1);
  const size_t min_series = std::max<size_t>(opt.min_shard_series, 1);
  plan.shards = std::clamp<size_t>(n / min_series, 1, threads * kShardsPerThread);
  if (threads == 1) plan.shards = 1;
  plan.width = static_cast<uint32_t>((n + plan.shards - 1) / plan.shards);
  plan.shards = (n + plan.width - 1) / plan.width;
  plan.chunks = std::clamp<size_t>(cells / min_series, 1, threads);
  return plan;
}

void Engine::Impl::bucket_cells(const Interval& iv, const std::vector<uint8_t>* only,
                                const RollupPlan& plan) {
  if (shard_inputs.size() < plan.chunks * plan.shards)
    shard_inputs.resize(plan.chunks * plan.shards);
  run_parallel(plan.chunks, [&](size_t chunk) {
    ShardInputs* row = &shard_inputs[chunk * plan.shards];
    for (size_t s = 0; s < plan.shards; ++s) {
      row[s].counters.clear();
      row[s].others.clear();
    }
    const size_t n = iv.cells.size();
    const size_t end = n * (chunk + 1) / plan.chunks;
    for (size_t i = n * chunk / plan.chunks; i < end; ++i) {
      const Cell& c = iv.cells[i];
      const Slot& slot = slots[c.slot];
      if (slot.kind == Kind::Distribution && c.dist == kNone) continue;
      for (uint32_t a : slot.agg) {
        if (a == kNone || (only && !(*only)[a])) continue;
        ShardInputs& to = row[a / plan.width];
        if (slot.kind == Kind::Counter) to.counters.push_back({a, kNone, c.value});
        else if (slot.kind == Kind::Gauge) to.others.push_back({a, kNone, c.value});
        else to.others.push_back({a, c.dist, 0});
      }
    }
  });
}

// Counters: count and rate of this interval for every live counter series (0 when it had no
// data), and on first emission the EWMA tick with this interval's count plus late deltas that
// arrived for intervals already emitted (so the meters lose nothing).
void Engine::Impl::emit_counters(const Interval& iv, bool reemit, const RollupPlan& plan,
                                 size_t shard, ShardOutput& part) {
  const uint32_t lo = static_cast<uint32_t>(shard * plan.width);
  const uint32_t hi = static_cast<uint32_t>(std::min<size_t>(aggs.size(), lo + size_t{plan.width}));
  if (lo >= hi) return;
  std::vector<double> sum(hi - lo, 0.0);
  std::vector<uint8_t> touched(hi - lo, 0);
  for (size_t chunk = 0; chunk < plan.chunks; ++chunk) {
    for (const AggInput& in : shard_inputs[chunk * plan.shards + shard].counters) {
      sum[in.agg - lo] += in.value;
      touched[in.agg - lo] = 1;
    }
  }
  const double seconds = static_cast<double>(iv_ms) / 1000.0;
  IntervalOutput& out = part.section[kCounters];
  for (uint32_t i = lo; i < hi; ++i) {
    Aggregate& a = aggs[i];
    if (a.kind != Kind::Counter) continue;
    bool live = a.alive && a.first_start <= iv.start && !reemit;
    if (!live && !touched[i - lo]) continue;
    double count = sum[i - lo];
    add_record(out, a, SeriesKind::Counter, part.new_keys[kCounters]).count_total = a.total_count;
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

void Engine::Impl::emit_gauges_and_dists(const Interval& iv, const RollupPlan& plan, size_t shard,
                                         ShardOutput& part) {
  std::vector<std::pair<uint32_t, double>> gauges;
  std::vector<std::pair<uint32_t, const Distribution*>> dists;
  for (size_t chunk = 0; chunk < plan.chunks; ++chunk) {
    for (const AggInput& in : shard_inputs[chunk * plan.shards + shard].others) {
      if (in.dist == kNone) gauges.emplace_back(in.agg, in.value);
      else dists.emplace_back(in.agg, &iv.dists[in.dist]);
    }
  }
  auto by_agg = [](const auto& x, const auto& y) { return x.first < y.first; };
  std::stable_sort(gauges.begin(), gauges.end(), by_agg);
  std::stable_sort(dists.begin(), dists.end(), by_agg);
  std::vector<double> values;
  StatValues stats;
  IntervalOutput& gout = part.section[kGauges];
  for (size_t i = 0; i < gauges.size();) {
    size_t j = i;
    values.clear();
    for (; j < gauges.size() && gauges[j].first == gauges[i].first; ++j)
      values.push_back(gauges[j].second);
    Aggregate& a = aggs[gauges[i].first];
    stats.clear();
    if (a.level == Level::Process) stats.emplace_back("last", values.back());
    else gauge_stats(values, stats);
    add_record(gout, a, SeriesKind::Gauge, part.new_keys[kGauges]);
    for (auto& [name, v] : stats) gout.stat(std::move(name), v);
    i = j;
  }
  std::vector<const Distribution*> group;
  IntervalOutput& dout = part.section[kDists];
  for (size_t i = 0; i < dists.size();) {
    size_t j = i;
    group.clear();
    for (; j < dists.size() && dists[j].first == dists[i].first; ++j) group.push_back(dists[j].second);
    stats.clear();
    distribution_stats(group, stats);
    Aggregate& a = aggs[dists[i].first];
    RollupRecord& r = add_record(dout, a, SeriesKind::Distribution, part.new_keys[kDists]);
    r.count_total = a.total_count;
    for (auto& [name, v] : stats) {
      if (name == "sum") r.sum_total = a.total_sum;  // unknown sum this interval: no total
      dout.stat(std::move(name), v);
    }
    i = j;
  }
}

IntervalOutput Engine::Impl::emit_interval(Interval& iv, bool reemit) {
  IntervalOutput out;
  out.start_s = iv.start / 1000;
  out.interval_s = iv_ms / 1000;
  out.reemit = reemit;
  const std::vector<uint8_t>* only = nullptr;
  if (reemit) {  // full values of every series that late data touched
    scratch_mark.assign(aggs.size(), 0);
    for (uint32_t s : iv.changed_slots)
      for (uint32_t a : slots[s].agg)
        if (a != kNone) scratch_mark[a] = 1;
    only = &scratch_mark;
  }
  const RollupPlan plan = rollup_plan(iv.cells.size());
  bucket_cells(iv, only, plan);
  std::vector<ShardOutput> parts(plan.shards);
  run_parallel(plan.shards, [&](size_t shard) {
    emit_counters(iv, reemit, plan, shard, parts[shard]);
    emit_gauges_and_dists(iv, plan, shard, parts[shard]);
  });
  size_t records = 0, stats = 0;
  for (const ShardOutput& p : parts)
    for (const IntervalOutput& o : p.section) {
      records += o.records.size();
      stats += o.stats.size();
    }
  out.records.reserve(records);
  out.stats.reserve(stats);
  for (int section : {kCounters, kGauges, kDists}) {
    for (ShardOutput& p : parts) {
      for (const auto& key : p.new_keys[section]) key->id = next_series_key_id();
      append_output(out, std::move(p.section[section]));
    }
  }
  if (!reemit) iv.emitted = true;
  iv.changed_slots.clear();
  return out;
}

}  // namespace statherd::server
