// Ingest: decode, dedup, write-ahead log, per-source counter deltas, interval attribution.
#include "server/engine.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "common/log.h"
#include "common/time_floor.h"
#include "server/dist_delta.h"
#include "server/engine_impl.h"

namespace statherd::server {
namespace {


void append_key_part(std::string& k, std::string_view part) {
  k.append(part);
  k.push_back('\0');
}

}  // namespace

Engine::Impl::Impl(EngineOptions o) : opt(std::move(o)), iv_ms(opt.interval.count()) {
  if (iv_ms <= 0) iv_ms = 10'000;
  if (unsigned threads = resolve_threads(opt.threads); threads > 1)
    pool = std::make_unique<ForkJoinPool>(threads, "rollup");
}

Engine::Impl::~Impl() {
  bury_all_keys();  // outputs still queued for a sink keep them
  if (state_lock_fd >= 0) ::close(state_lock_fd);
}

int64_t Engine::Impl::retain_floor(int64_t now_ms) const {
  return floor_to(now_ms - opt.late_window.count(), iv_ms);
}

// Interval attribution: start = floor(ts / interval) * interval. More than one interval in the
// future: the current interval. Older than the late window or than the oldest open interval:
// the oldest open interval (counted as late), so no increment is ever lost.
int64_t Engine::Impl::target_interval(int64_t sample_ms, int64_t now_ms) {
  int64_t s = floor_to(sample_ms, iv_ms);
  int64_t current = floor_to(now_ms, iv_ms);
  if (s > current + iv_ms) s = current;
  int64_t floor = retain_floor(now_ms);
  int64_t lower = intervals.empty()
                      ? (next_emit_start == kNoInterval ? floor : std::max(floor, next_emit_start))
                      : intervals.front().start;
  if (s < floor || s < lower) {
    if (s != lower) ++st.late_samples;
    s = lower;
  }
  return s;
}

Interval& Engine::Impl::interval_at(int64_t start) {
  if (next_emit_start == kNoInterval) next_emit_start = start;
  if (intervals.empty()) {
    intervals.push_back(Interval{});
    intervals.back().start = start;
    intervals.back().emitted = start < next_emit_start;
  }
  while (intervals.front().start > start) {
    Interval iv;
    iv.start = intervals.front().start - iv_ms;
    iv.emitted = iv.start < next_emit_start;
    intervals.push_front(std::move(iv));
  }
  while (intervals.back().start < start) {
    Interval iv;
    iv.start = intervals.back().start + iv_ms;
    iv.emitted = iv.start < next_emit_start;
    // A fleet sends about as many series every interval: the new one's cells start with the
    // room the last one took, not from empty through ~20 doublings (each a copy into fresh
    // pages: 400k cells are 6 MB).
    if (!intervals.back().is_packed) iv.cells.reserve(intervals.back().cells.size());
    intervals.push_back(std::move(iv));
  }
  return intervals[static_cast<size_t>((start - intervals.front().start) / iv_ms)];
}

void Engine::Impl::pack(Interval& iv) {
  if (iv.is_packed) return;
  iv.packed = pack_cells(iv.cells);
  iv.is_packed = true;
  std::vector<Cell>().swap(iv.cells);
  std::unordered_map<uint32_t, uint32_t>().swap(iv.index);
  iv.index_built = false;
}

// The cells come back in their order: the slots' cache_pos into them still hold.
void Engine::Impl::unpack(Interval& iv) {
  if (!iv.is_packed) return;
  iv.cells = unpack_cells(iv.packed);
  std::vector<uint8_t>().swap(iv.packed);
  iv.is_packed = false;
}

void Engine::Impl::pack_emitted() {
  for (Interval& iv : intervals)
    if (iv.emitted && iv.changed_slots.empty() && !iv.cells.empty()) pack(iv);
}

Cell& Engine::Impl::cell_for(Interval& iv, Slot& slot, uint32_t slot_id) {
  if (iv.is_packed) unpack(iv);  // late data for an emitted interval
  if (slot.cache_start == iv.start) return iv.cells[slot.cache_pos];
  auto append = [&]() -> Cell& {
    iv.cells.push_back(Cell{slot_id});
    uint32_t pos = static_cast<uint32_t>(iv.cells.size() - 1);
    if (iv.index_built) iv.index.emplace(slot_id, pos);
    if (iv.start > slot.cache_start) {
      slot.cache_start = iv.start;
      slot.cache_pos = pos;
    }
    return iv.cells.back();
  };
  if (iv.start > slot.cache_start) return append();
  if (!iv.index_built) {  // a late sample for an older interval: index that interval once
    iv.index.reserve(iv.cells.size());
    for (uint32_t i = 0; i < iv.cells.size(); ++i) iv.index.emplace(iv.cells[i].slot, i);
    iv.index_built = true;
  }
  auto it = iv.index.find(slot_id);
  return it != iv.index.end() ? iv.cells[it->second] : append();
}

uint32_t Engine::Impl::source_for(const SourceIdentity& id, const std::string& agent,
                                  int64_t now_ms) {
  std::string key = id.key();
  auto it = source_index.find(key);
  uint32_t idx;
  if (it != source_index.end()) {
    idx = it->second;
  } else {
    if (!free_sources.empty()) {
      idx = free_sources.back();
      free_sources.pop_back();
      sources[idx] = SourceState{id, agent, 0, 0, 0, true, {}};
    } else {
      idx = static_cast<uint32_t>(sources.size());
      sources.push_back(SourceState{id, agent, 0, 0, 0, true, {}});
    }
    source_index.emplace(std::move(key), idx);
    ++st.sources;
  }
  SourceState& src = sources[idx];
  src.agent_id = agent;
  src.last_seen_ms = now_ms;
  return idx;
}

uint32_t Engine::Impl::agg_for(Level level, const SourceIdentity& id, const Sample& s,
                               int64_t start) {
  std::string key;
  key.push_back(static_cast<char>(level));
  key.push_back(static_cast<char>(s.kind));
  append_key_part(key, id.app);
  if (level != Level::App) append_key_part(key, id.host);
  if (level == Level::Process) append_key_part(key, std::to_string(id.pid));
  append_key_part(key, s.name);
  for (const auto& [k, v] : s.tags) { append_key_part(key, k); append_key_part(key, v); }
  if (uint32_t found = agg_index.find(key, agg_key); found != IdIndex::kNone) return found;
  uint32_t idx;
  if (!free_aggs.empty()) { idx = free_aggs.back(); free_aggs.pop_back(); }
  else { idx = static_cast<uint32_t>(aggs.size()); aggs.emplace_back(); }
  Aggregate& a = aggs[idx];
  a = Aggregate{};
  a.key = std::move(key);
  a.level = level;
  a.kind = s.kind;
  a.series_key = make_series_key(level, id.app, level != Level::App ? id.host : std::string(),
                                 level == Level::Process ? id.pid : -1, s.name, s.tags);
  a.meter = Meter(static_cast<double>(iv_ms) / 1000.0);
  a.first_start = start;
  a.alive = true;
  agg_index.insert(a.key, idx);
  return idx;
}

namespace {

// A slot's key: source, kind, a distribution's form (a histogram and a summary under one name,
// after a deploy that changed the metric's type, each keep their own previous cumulative
// state), name, then "\0tag\1value" per tag. `part` calls go in that order.
template <class Part>
void key_parts(uint32_t src, const Sample& s, Part&& part) {
  part(std::string_view(reinterpret_cast<const char*>(&src), sizeof src));
  const char kind = static_cast<char>(s.kind);
  part(std::string_view(&kind, 1));
  if (s.kind == Kind::Distribution && s.dist) {
    const char form = static_cast<char>(s.dist->form);
    part(std::string_view(&form, 1));
  }
  part(s.name);
  for (const auto& [tk, tv] : s.tags) {
    part(std::string_view("\0", 1));
    part(tk);
    part(std::string_view("\1", 1));
    part(tv);
  }
}

// The steady case (the series at this position of the source's batch is the one it was last
// time) compares the key in place instead of building it: no copy of the name and tags. The
// length is checked first (the slot is in cache, its key's bytes usually are not).
bool key_matches(std::string_view key, uint32_t src, const Sample& s) {
  size_t length = 0;
  key_parts(src, s, [&length](std::string_view p) { length += p.size(); });
  if (length != key.size()) return false;
  const char* at = key.data();
  bool same = true;
  key_parts(src, s, [&](std::string_view p) {
    same = same && std::memcmp(at, p.data(), p.size()) == 0;
    at += p.size();
  });
  return same;
}

}  // namespace

uint32_t Engine::Impl::slot_for(uint32_t src, size_t pos, const Sample& s, int64_t start,
                                int64_t now_ms) {
  SourceState& source = sources[src];
  if (pos < source.order.size()) {
    uint32_t c = source.order[pos];
    if (c != kNone && slots[c].alive && key_matches(slots[c].key, src, s)) return c;
  }
  std::string& k = key_buf;
  k.clear();
  key_parts(src, s, [&k](std::string_view p) { k.append(p); });
  auto remember = [&](uint32_t id) {
    if (pos >= source.order.size()) {
      if (pos > 1'000'000) return id;
      source.order.resize(pos + 1, kNone);
    }
    source.order[pos] = id;
    return id;
  };
  if (uint32_t found = slot_index.find(k, slot_key); found != IdIndex::kNone)
    return remember(found);
  if (st.series >= opt.max_series_total || source.series >= opt.max_series_per_source) {
    ++st.series_rejected;
    return kNone;
  }
  uint32_t idx;
  if (!free_slots.empty()) { idx = free_slots.back(); free_slots.pop_back(); }
  else { idx = static_cast<uint32_t>(slots.size()); slots.emplace_back(); }
  Slot slot;
  slot.key = k;
  slot.source = src;
  slot.kind = s.kind;
  slot.alive = true;
  slot.last_seen_ms = now_ms;
  const bool levels[3] = {opt.level_process, opt.level_host, opt.level_app};
  for (int l = 0; l < 3; ++l) {
    if (!levels[l]) continue;
    slot.agg[l] = agg_for(static_cast<Level>(l), source.id, s, start);
    ++aggs[slot.agg[l]].live_slots;
  }
  slots[idx] = std::move(slot);
  slot_index.insert(k, idx);
  ++source.series;
  ++st.series;
  return remember(idx);
}

// Counter hazard, decided here: the first sighting of a series is counted whole when the agent
// says the source started while it was watching (SourceSamples.fresh), or when the server has
// already seen this source in an earlier batch (the series was created since: every increment
// of it is new). Otherwise the process was already running when first seen: its value holds
// increments from before we looked, so it only sets the baseline (delta 0).
//
// Counter values, decided here (docs/OPERATIONS.md "Counter values"): a cumulative counter is
// finite and >= 0. A negative or non-finite value is refused and counted (counters_rejected); it
// changes nothing, not even the baseline, so -1e18 between 5 and 6 costs no spike either way.
// Any step down (however large) is a reset: the delta is the new value.
void Engine::Impl::apply_sample(uint32_t src, size_t pos, bool count_new, const Sample& s,
                                int64_t now_ms) {
  if (s.kind == Kind::Text) return;  // not rolled up
  if (s.kind == Kind::Distribution && !s.dist) return;
  if (s.kind == Kind::Counter && !(std::isfinite(s.value) && s.value >= 0)) {
    ++st.counters_rejected;
    return;
  }
  if (s.kind == Kind::Gauge && !std::isfinite(s.value)) return;  // the decoder refuses these
  int64_t start = target_interval(s.timestamp_ms, now_ms);
  uint32_t slot_id = slot_for(src, pos, s, start, now_ms);
  if (slot_id == kNone) return;
  Slot& slot = slots[slot_id];
  slot.last_seen_ms = now_ms;
  Interval& iv = interval_at(start);
  Cell& cell = cell_for(iv, slot, slot_id);
  switch (s.kind) {
    case Kind::Counter: {
      double delta;
      // The agent's previous value wins over this server's state (docs/CLUSTER.md, "Counters
      // across a move"): whoever holds the series counts the same increment.
      if (s.has_previous()) {
        if (s.value < s.previous) { delta = s.value; ++st.resets; }
        else delta = s.value - s.previous;
      }
      else if (!slot.has_last) delta = count_new ? s.value : 0;
      else if (!std::isfinite(slot.last_cumulative)) delta = 0;  // NaN from an old snapshot
      else if (s.value < slot.last_cumulative) { delta = s.value; ++st.resets; }
      else delta = s.value - slot.last_cumulative;
      slot.has_last = true;
      slot.last_cumulative = s.value;
      cell.value += delta;
      for (uint32_t a : slot.agg) {
        if (a == kNone) continue;
        aggs[a].total_count += delta;
        if (iv.emitted) aggs[a].pending_late += delta;
      }
      break;
    }
    case Kind::Gauge: cell.value = s.value; break;
    case Kind::Distribution: {
      Distribution delta = dist_delta(slot, count_new, s.dist);
      add_dist_totals(slot, delta);
      if (cell.dist == kNone) {
        cell.dist = static_cast<uint32_t>(iv.dists.size());
        iv.dists.push_back(std::move(delta));
      } else {
        merge_delta(iv.dists[cell.dist], delta);
      }
      break;
    }
    case Kind::Text: break;
  }
  for (uint32_t a : slot.agg)
    if (a != kNone && start < aggs[a].first_start) aggs[a].first_start = start;
  if (iv.emitted) iv.changed_slots.push_back(slot_id);
}

namespace {

std::string cut(const std::string& text, uint64_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  return text.substr(0, max_bytes) + "... (" + std::to_string(text.size() - max_bytes) +
         " bytes cut)";
}

}  // namespace

// Keeps a bounded copy of the batch's errors (EngineOptions::max_errors_*). Whether another
// agent may keep errors is counted only when this one had none (agents rarely change state).
void Engine::Impl::keep_errors(AgentState& agent, const std::vector<SourceError>& errors) {
  bool room = !agent.errors.empty();
  if (!room && !errors.empty()) {
    uint64_t holding = 0;
    for (const auto& [id, a] : agents) holding += a.errors.empty() ? 0 : 1;
    room = holding < opt.max_agents_with_errors;
  }
  agent.errors.clear();
  agent.errors_dropped = errors.size();
  if (!room) return;
  for (size_t i = 0; i < errors.size() && i < opt.max_errors_per_agent; ++i) {
    agent.errors.push_back({cut(errors[i].source, opt.max_error_bytes),
                            cut(errors[i].message, opt.max_error_bytes)});
  }
  agent.errors_dropped = errors.size() - agent.errors.size();
}

// Distributions are cumulative too (issue #14) and follow the counter rules above: a first
// sighting counts whole when count_new, else it is the baseline (no observations); a state
// that is not a continuation of the previous one (count or a bucket went down, another form or
// bucket layout) is a reset whose delta is the new state.
Distribution Engine::Impl::dist_delta(Slot& slot, bool count_new,
                                      const std::shared_ptr<const Distribution>& cur) {
  Distribution delta;
  if (!slot.last_dist) {
    delta = count_new ? *cur : empty_delta_like(*cur);
  } else if (auto d = distribution_delta(*slot.last_dist, *cur)) {
    delta = std::move(*d);
  } else {
    delta = *cur;
    ++st.resets;
  }
  slot.last_dist = cur;
  return delta;
}

// A distribution's totals grow by the observations of its delta (non-finite and unknown sums
// are skipped: one NaN would freeze the exported _sum forever).
void Engine::Impl::add_dist_totals(const Slot& slot, const Distribution& delta) {
  const bool sketch = delta.form == Distribution::Form::Sketch;
  const double count = sketch ? delta.sketch.count() : delta.count;
  const double sum = sketch ? delta.sketch.sum() : delta.sum;
  const bool sum_known = sketch || !delta.sum_unknown;  // unknown: the _sum total stays
  for (uint32_t a : slot.agg) {
    if (a == kNone) continue;
    if (std::isfinite(count) && count > 0) aggs[a].total_count += count;
    if (sum_known && std::isfinite(sum)) aggs[a].total_sum += sum;
  }
}

void Engine::Impl::apply_batch(const Batch& batch, int64_t now_ms) {
  AgentState& agent = agents[batch.agent_id];
  agent.last_seq = batch.seq;
  mirror_seq(batch.agent_id, batch.seq);
  agent.last_seen_ms = now_ms;
  const int64_t previous_read_ms = agent.last_read_ms;
  keep_errors(agent, batch.errors);
  for (const SourceSamples& ss : batch.sources) {
    const SourceIdentity* known = known_process_of(ss.id, batch.agent_id, ss.start_is_file_birth);
    uint32_t src = source_for(known ? SourceIdentity(*known) : ss.id, batch.agent_id, now_ms);
    bool count_new = ss.fresh || sources[src].batches > 0 ||
                     started_after(ss.id, previous_read_ms);
    for_each_sample(ss, [&](size_t i, const Sample& s) {
      apply_sample(src, i, count_new, s, now_ms);
    });
    ++sources[src].batches;
    st.samples_in += ss.samples.size() + ss.encoded_count;
  }
  agent.last_read_ms = std::max(agent.last_read_ms, batch.sent_ms);
  ++st.batches;
}

// ---- public API -------------------------------------------------------------------------

Engine::Engine(EngineOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Engine::~Engine() = default;

std::optional<Batch> decode_for_ingest(std::string_view body, const WireLimits& limits,
                                       IngestOutcome& out) {
  Result<Batch> batch = make_error("not decoded");
  bool over_limit = false;
  try {
    batch = decode_batch_lazy(body, limits, &over_limit);
  } catch (const std::bad_alloc&) {  // not acknowledged: the agent keeps it and retries
    out.http_status = 503;
    out.message = "out of memory decoding a batch of " + std::to_string(body.size()) + " bytes";
    log::error(out.message + "\nhint: lower limits.max_samples_per_batch or raise the memory limit");
    return std::nullopt;
  }
  if (!batch) {
    // Too many samples or sources: well formed, only too large; 413 makes the agent split it.
    out.http_status = over_limit ? 413 : 400;
    out.message = batch.error().to_string();
    return std::nullopt;
  }
  return std::move(*batch);
}

IngestOutcome Engine::ingest(std::string_view body, int64_t now_ms) {
  Impl& m = *impl_;
  Locked lock(m);
  IngestOutcome out;
  std::optional<Batch> batch = decode_for_ingest(body, m.opt.wire_limits, out);
  if (!batch) {
    ++m.st.rejected_batches;
    return out;
  }
  auto agent = m.agents.find(batch->agent_id);
  if (agent != m.agents.end() && batch->seq <= agent->second.last_seq) {
    ++m.st.duplicates;
    agent->second.last_seen_ms = now_ms;
    out.duplicate = true;
    out.message = "duplicate batch (seq " + std::to_string(batch->seq) + " <= " +
                  std::to_string(agent->second.last_seq) + "), already applied";
    return out;
  }
  if (!m.opt.state_dir.empty()) {
    Status written = m.wal.append(now_ms, body);
    m.st.wal_ok = static_cast<bool>(written);
    if (!written) {
      ++m.st.wal_failures;
      out.http_status = 500;
      out.message = written.error().to_string();
      log::error(out.message);
      return out;
    }
  }
  out.samples = batch->sample_count();
  try {
    m.apply_batch(*batch, now_ms);
  } catch (const std::exception& e) {  // in the WAL: a restart replays (or quarantines) it
    out.http_status = 500;
    out.message = std::string("batch logged but not fully applied: ") + e.what();
    log::error(out.message + "\nhint: lower limits.max_samples_per_batch or limits.max_series_*");
    return out;
  }
  out.message = "ok";
  return out;
}

void Engine::ingest_local(const SourceSamples& ss, int64_t now_ms) {
  Impl& m = *impl_;
  Locked lock(m);
  uint32_t src = m.source_for(ss.id, "statherd-server", now_ms);
  bool count_new = ss.fresh || m.sources[src].batches > 0;
  for_each_sample(ss, [&](size_t i, const Sample& s) {
    m.apply_sample(src, i, count_new, s, now_ms);
  });
  ++m.sources[src].batches;
}

std::vector<IntervalOutput> Engine::flush(int64_t now_ms) {
  Locked lock(*impl_);
  std::vector<IntervalOutput> out = impl_->flush(now_ms, false);
  if (impl_->sources_asked.load()) {  // built only for a server someone asks
    auto view = std::make_shared<const nlohmann::json>(impl_->sources_view(now_ms));
    std::lock_guard<std::mutex> g(impl_->stats_mu);
    impl_->published_sources = std::move(view);  // what /api/v1/sources answers in the next one
  }
  return out;
}

std::vector<IntervalOutput> Engine::drain(int64_t now_ms) {
  Locked lock(*impl_);
  std::vector<IntervalOutput> out = impl_->flush(now_ms, true);
  if (impl_->wal.is_open() && !impl_->wal_external) {
    Status s = impl_->write_snapshot(now_ms);
    if (!s) log::warn("snapshot at shutdown failed: " + s.error().to_string());
  }
  return out;
}

EngineStats Engine::stats() const {
  const Impl& m = *impl_;
  EngineStats s;
  {
    std::lock_guard<std::mutex> g(m.stats_mu);
    s = m.published;
  }
  s.rejected_batches += m.front_rejected.load();
  s.duplicates += m.front_duplicates.load();
  s.wal_failures += m.front_wal_failures.load();
  if (m.wal_external) {
    s.wal_bytes = m.front_wal_bytes.load();
    s.wal_ok = s.wal_ok && m.front_wal_ok.load();
  }
  return s;
}

const EngineOptions& Engine::options() const { return impl_->opt; }

// Never waits for a rollup: while one holds the engine, the view of the last call (or of the
// end of the last rollup) is answered, at most one interval old.
nlohmann::json Engine::sources_json(int64_t now_ms) const {
  impl_->sources_asked = true;
  std::unique_lock<std::mutex> lock(impl_->mu, std::try_to_lock);
  if (!lock.owns_lock()) {
    std::lock_guard<std::mutex> g(impl_->stats_mu);
    if (impl_->published_sources) return *impl_->published_sources;
    lock.lock();  // none yet: the first call waits once
  }
  auto view = std::make_shared<const nlohmann::json>(impl_->sources_view(now_ms));
  std::lock_guard<std::mutex> g(impl_->stats_mu);
  impl_->published_sources = view;
  return *view;
}

nlohmann::json Engine::Impl::sources_view(int64_t /*now_ms*/) const {
  nlohmann::json agents_out = nlohmann::json::array();
  for (const auto& [id, a] : agents) {
    // Every source the agent could not read in its last batch, including files that never
    // produced a sample (a corrupt file) and so have no entry under "sources".
    nlohmann::json errors = nlohmann::json::array();
    for (const SourceError& e : a.errors)
      errors.push_back({{"source", e.source}, {"message", e.message}});
    agents_out.push_back({{"agent_id", id}, {"last_seq", a.last_seq},
                      {"last_seen_ms", a.last_seen_ms}, {"errors", std::move(errors)},
                      {"errors_dropped", a.errors_dropped}});
  }
  nlohmann::json sources_out = nlohmann::json::array();
  for (const SourceState& s : sources) {
    if (!s.alive) continue;
    nlohmann::json errors = nlohmann::json::array();
    auto agent = agents.find(s.agent_id);
    if (agent != agents.end())
      for (const SourceError& e : agent->second.errors)
        if (e.source == s.id.path) errors.push_back(e.message);
    sources_out.push_back({{"host", s.id.host}, {"app", s.id.app}, {"pid", s.id.pid},
                       {"start_time_ms", s.id.start_time_ms}, {"path", s.id.path},
                       {"last_seen_ms", s.last_seen_ms}, {"series", s.series},
                       {"errors", std::move(errors)}});
  }
  return {{"agents", std::move(agents_out)}, {"sources", std::move(sources_out)}};
}

}  // namespace statherd::server
