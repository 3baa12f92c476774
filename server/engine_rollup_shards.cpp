// The rollup of one interval, sharded by series over the engine's threads (issue #10 item 2).
// Aggregates are cut into contiguous shards of ids. Two fork-join rounds:
//   1. bucket_cells: the interval's cells are cut into chunks (one per thread); each chunk
//      lists, per shard, every (aggregate, value) its cells feed, in cell order;
//   2. per shard, count_shard: counter sums, gauge and distribution grouping (a shard reads the
//      lists of every chunk in chunk order, so each aggregate sees its cells in arrival order:
//      the same floating-point sums), the distributions' stats, and how many records and stats
//      each section (counters, gauges, distributions) of the shard emits;
//   3. per shard, write_shard: into its place in the output, sized once: section by section,
//      shard after shard, i.e. records in ascending aggregate id within each section, as one
//      thread emits them; counters' EWMA ticks, gauges' stats.
// New series keys get their ids after that, in output order. So the output does not depend on
// the number of threads, bit for bit.
#include <algorithm>
#include <cassert>
#include <iterator>

#include "server/engine_impl.h"
#include "server/rollup.h"

namespace statherd::server {
namespace {

enum Section { kCounters = 0, kGauges = 1, kDists = 2 };

// Shards per thread: a shard full of distributions costs more than one of counters, so the
// threads take shards one by one (deterministic output whichever thread takes which).
constexpr size_t kShardsPerThread = 4;

}  // namespace

void Engine::Impl::run_parallel(size_t n, const std::function<void(size_t)>& task) {
  if (pool) {
    pool->run(n, task);
    return;
  }
  for (size_t i = 0; i < n; ++i) task(i);
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

namespace {

// Fills records and stats of an output sized beforehand, from a given position on.
struct PlacedWriter {
  IntervalOutput& out;
  size_t record, stat;
  RollupRecord& add(const SeriesKeyRef& key, SeriesKind kind) {  // out.pin keeps it alive
    RollupRecord& r = out.records[record++];
    r.key = key.get();
    r.kind = kind;
    r.first_stat = static_cast<uint32_t>(stat);
    r.stat_count = 0;
    return r;
  }
  void add_stat(std::string_view name, double value) {  // a literal or interned name
    Stat& s = out.stats[stat++];
    s.name = name;
    s.value = value;
    ++out.records[record - 1].stat_count;
  }
};

uint32_t shard_begin(const RollupPlan& plan, size_t shard) {
  return static_cast<uint32_t>(shard * plan.width);
}

}  // namespace

// Pass 1: everything but the counters' and gauges' records. Counters: this interval's count
// for every live counter series (0 when it had no data) or, re-emitted, every touched one.
void Engine::Impl::count_shard(const Interval& iv, bool reemit, const RollupPlan& plan,
                               size_t shard, ShardOutput& part) {
  const uint32_t lo = shard_begin(plan, shard);
  const uint32_t hi = static_cast<uint32_t>(std::min<size_t>(aggs.size(), lo + size_t{plan.width}));
  if (lo >= hi) return;
  part.sum.assign(hi - lo, 0.0);
  part.touched.assign(hi - lo, 0);
  std::vector<std::pair<uint32_t, const Distribution*>> dists;
  for (size_t chunk = 0; chunk < plan.chunks; ++chunk) {
    const ShardInputs& in = shard_inputs[chunk * plan.shards + shard];
    for (const AggInput& c : in.counters) {
      part.sum[c.agg - lo] += c.value;
      part.touched[c.agg - lo] = 1;
    }
    for (const AggInput& c : in.others) {
      if (c.dist == kNone) part.gauges.emplace_back(c.agg, c.value);
      else dists.emplace_back(c.agg, &iv.dists[c.dist]);
    }
  }
  for (uint32_t i = lo; i < hi; ++i) {
    const Aggregate& a = aggs[i];
    if (a.kind != Kind::Counter) continue;
    bool live = a.alive && a.first_start <= iv.start && !reemit;
    if (!live && !part.touched[i - lo]) continue;
    ++part.records[kCounters];
    part.stats[kCounters] += reemit ? 2 : 5;
  }
  auto by_agg = [](const auto& x, const auto& y) { return x.first < y.first; };
  std::stable_sort(part.gauges.begin(), part.gauges.end(), by_agg);
  for (size_t i = 0; i < part.gauges.size(); ++i) {
    if (i > 0 && part.gauges[i].first == part.gauges[i - 1].first) continue;
    ++part.records[kGauges];
    part.stats[kGauges] += aggs[part.gauges[i].first].level == Level::Process ? 1 : 7;
  }
  std::stable_sort(dists.begin(), dists.end(), by_agg);
  std::vector<const Distribution*> group;
  StatValues stats;
  for (size_t i = 0; i < dists.size();) {
    size_t j = i;
    group.clear();
    for (; j < dists.size() && dists[j].first == dists[i].first; ++j) group.push_back(dists[j].second);
    stats.clear();
    distribution_stats(group, stats);
    Aggregate& a = aggs[dists[i].first];
    RollupRecord& r = part.dists.add_pinned(a.series_key.get(), SeriesKind::Distribution);
    r.count_total = a.total_count;
    for (const auto& [name, v] : stats) {
      if (name == "sum") r.sum_total = a.total_sum;  // unknown sum this interval: no total
      part.dists.stat_interned(name, v);  // StatValues' names are interned already
    }
    i = j;
  }
  part.records[kDists] = part.dists.records.size();
  part.stats[kDists] = part.dists.stats.size();
}

// Pass 2: the shard's records in their place. Counters: count and rate, and on first emission
// the EWMA tick with this interval's count plus late deltas that arrived for intervals already
// emitted (so the meters lose nothing). Gauges: the last value at process level, else the
// stats over sources (server/rollup.h).
void Engine::Impl::write_shard(const Interval& iv, bool reemit, const RollupPlan& plan,
                               size_t shard, ShardOutput& part, IntervalOutput& out) {
  const uint32_t lo = shard_begin(plan, shard);
  const double seconds = static_cast<double>(iv_ms) / 1000.0;
  PlacedWriter w{out, part.at_record[kCounters], part.at_stat[kCounters]};
  for (uint32_t i = lo; i < lo + part.sum.size(); ++i) {
    Aggregate& a = aggs[i];
    if (a.kind != Kind::Counter) continue;
    bool live = a.alive && a.first_start <= iv.start && !reemit;
    if (!live && !part.touched[i - lo]) continue;
    double count = part.sum[i - lo];
    w.add(a.series_key, SeriesKind::Counter).count_total = a.total_count;
    w.add_stat("count", count);
    w.add_stat("rate", count / seconds);
    if (reemit) continue;
    a.meter.tick(count + a.pending_late);
    a.pending_late = 0;
    w.add_stat("m1_rate", a.meter.m1.rate());
    w.add_stat("m5_rate", a.meter.m5.rate());
    w.add_stat("m15_rate", a.meter.m15.rate());
  }
  assert(w.record == part.at_record[kCounters] + part.records[kCounters]);
  assert(w.stat == part.at_stat[kCounters] + part.stats[kCounters]);
  w.record = part.at_record[kGauges];
  w.stat = part.at_stat[kGauges];
  std::vector<double> values;
  StatValues stats;
  const auto& gauges = part.gauges;
  for (size_t i = 0; i < gauges.size();) {
    size_t j = i;
    values.clear();
    for (; j < gauges.size() && gauges[j].first == gauges[i].first; ++j)
      values.push_back(gauges[j].second);
    Aggregate& a = aggs[gauges[i].first];
    stats.clear();
    if (a.level == Level::Process) stats.emplace_back("last", values.back());
    else gauge_stats(values, stats);
    w.add(a.series_key, SeriesKind::Gauge);
    for (const auto& [name, v] : stats) w.add_stat(name, v);
    i = j;
  }
  assert(w.record == part.at_record[kGauges] + part.records[kGauges]);
  assert(w.stat == part.at_stat[kGauges] + part.stats[kGauges]);
  const size_t r0 = part.at_record[kDists], s0 = part.at_stat[kDists];
  for (size_t i = 0; i < part.dists.records.size(); ++i) {
    RollupRecord& r = out.records[r0 + i];
    r = std::move(part.dists.records[i]);
    r.first_stat += static_cast<uint32_t>(s0);
  }
  std::move(part.dists.stats.begin(), part.dists.stats.end(),
            out.stats.begin() + static_cast<ptrdiff_t>(s0));
}

IntervalOutput Engine::Impl::emit_interval(Interval& iv, bool reemit) {
  IntervalOutput out;
  out.start_s = iv.start / 1000;
  out.interval_s = iv_ms / 1000;
  out.reemit = reemit;
  out.pin = graveyard;  // the records hold the aggregates' keys without a count
  unpack(iv);
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
  run_parallel(plan.shards,
               [&](size_t shard) { count_shard(iv, reemit, plan, shard, parts[shard]); });
  size_t records = 0, stats = 0;
  for (int section : {kCounters, kGauges, kDists}) {
    for (ShardOutput& p : parts) {
      p.at_record[section] = records;
      p.at_stat[section] = stats;
      records += p.records[section];
      stats += p.stats[section];
    }
  }
  out.records.resize(records);
  out.stats.resize(stats);
  run_parallel(plan.shards, [&](size_t shard) {
    write_shard(iv, reemit, plan, shard, parts[shard], out);
    ShardOutput& p = parts[shard];
    p.sum = {};  // freed by the thread that built them
    p.touched = {};
    p.gauges = {};
    p.dists = IntervalOutput{};
  });
  if (!reemit) iv.emitted = true;
  iv.changed_slots.clear();
  return out;
}

}  // namespace statherd::server
