// Engine internals shared by engine.cpp (ingest), engine_emit.cpp (rollup, flush, expiry) and
// engine_snapshot.cpp (checkpoint/recovery). Not part of the public API.
//
// Layout for speed: every (source, kind, metric, tags) is a Slot, interned once in slot_index
// (one hash lookup per sample, key built into a reused buffer, heterogeneous lookup). A slot
// knows its rollup Aggregates (one per enabled level). Open intervals form a contiguous deque;
// each holds Cells (slot, value) appended in arrival order. A slot caches the position of its
// cell in the newest interval it touched, so the common case needs no second lookup.
// Dead slots/aggregates keep their data until no open interval can refer to them, then their
// ids are recycled.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/ewma.h"
#include "common/string_hash.h"
#include "server/block_vector.h"
#include "server/engine.h"
#include "server/fork_join_pool.h"
#include "server/id_index.h"
#include "server/interval_cells.h"
#include "server/series_point.h"
#include "server/wal.h"

namespace statherd::server {

inline constexpr int64_t kNoInterval = std::numeric_limits<int64_t>::min();


using InternMap = std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>>;

struct AgentState {
  uint64_t last_seq = 0;
  int64_t last_seen_ms = 0;
  int64_t last_read_ms = 0;  // the agent's read time (sent_ms) of its latest applied batch
  std::vector<SourceError> errors;  // from the agent's last batch, bounded (EngineOptions)
  uint64_t errors_dropped = 0;      // errors of that batch that were not kept
};

struct SourceState {
  SourceIdentity id;
  std::string agent_id;
  int64_t last_seen_ms = 0;
  uint64_t batches = 0;   // batches that carried this source
  uint32_t series = 0;    // live slots
  bool alive = true;
  // Agents send a source's samples in the same order every scrape: order[i] is the slot that
  // sample i mapped to last time, checked by key compare before the hash lookup.
  std::vector<uint32_t> order;
};

struct Slot {
  std::string key;
  uint32_t source = kNone;
  uint32_t agg[3] = {kNone, kNone, kNone};  // indexed by Level
  Kind kind = Kind::Gauge;
  bool alive = false;
  bool has_last = false;
  double last_cumulative = 0;
  // Distributions: the previous cumulative state; the interval gets the difference.
  std::shared_ptr<const Distribution> last_dist;
  int64_t last_seen_ms = 0;
  int64_t cache_start = kNoInterval;  // newest interval with a cell of this slot
  uint32_t cache_pos = 0;
};

struct Aggregate {
  std::string key;
  Level level = Level::App;
  Kind kind = Kind::Gauge;
  Meter meter{10};
  double pending_late = 0;   // late deltas of emitted intervals: added to the next tick
  // Running totals since the aggregate appeared (SeriesPoint::total): counters the sum of their
  // deltas, distributions the count and sum of their observations. Added at ingest, so a WAL
  // replay rebuilds exactly what the snapshot does not hold.
  double total_count = 0, total_sum = 0;
  int64_t first_start = 0;   // first interval with data: no EWMA tick before it
  // What it is (level, app, host, pid, metric, tags), made with it and shared by its records.
  SeriesKeyRef series_key;
  uint32_t live_slots = 0;
  bool alive = false;
};

struct Interval {
  int64_t start = 0;
  bool emitted = false;
  std::vector<Cell> cells;  // empty while packed
  // An emitted interval waiting out the late window keeps its cells packed (interval_cells.h);
  // late data for it unpacks them (cell_for), the next flush packs them again.
  std::vector<uint8_t> packed;
  bool is_packed = false;
  std::vector<Distribution> dists;  // per-interval deltas of cumulative distributions
  std::vector<uint32_t> changed_slots;  // since emission: re-emit these series' aggregates
  bool index_built = false;
  std::unordered_map<uint32_t, uint32_t> index;  // slot -> cell, built on first late lookup
};

// The rollup of one interval, sharded by aggregate (engine_rollup_shards.cpp): every (cell,
// aggregate it feeds) pair, bucketed by the aggregate's shard, in cell order.
struct AggInput {
  uint32_t agg;
  uint32_t dist;  // Interval::dists index (a distribution), else kNone
  double value;   // counter: the cell's delta sum; gauge: its value
};
struct ShardInputs {
  std::vector<AggInput> counters, others;  // others: gauges and distributions
};
// Aggregates [shard * width, (shard + 1) * width) form a shard; cells [chunk * n / chunks, ...)
// a chunk. inputs[chunk * shards + shard] is what that chunk of cells feeds that shard.
struct RollupPlan {
  size_t chunks = 1, shards = 1;
  uint32_t width = 1;
};
// One shard's rollup, in two passes (engine_rollup_shards.cpp): `count` sums the counters,
// groups gauges and distributions and rolls up the distributions (into `dists`); then every
// shard's place in the output is known and `write` fills it in (counters, EWMA ticks, gauges).
struct ShardOutput {
  std::vector<double> sum;       // counters, by aggregate - first of the shard
  std::vector<uint8_t> touched;
  std::vector<std::pair<uint32_t, double>> gauges;  // (aggregate, value), by aggregate
  IntervalOutput dists;          // the distribution records, stat offsets from 0
  size_t records[3] = {0, 0, 0}, stats[3] = {0, 0, 0};  // by section
  size_t at_record[3] = {0, 0, 0}, at_stat[3] = {0, 0, 0};  // where they go in the output
};

// The key of record `id` in `records` (a Slot or an Aggregate): how an IdIndex compares.
template <class Record>
struct KeyIn {
  const BlockVector<Record>& records;
  std::string_view operator()(uint32_t id) const { return records[id].key; }
};

struct DeferredFree {
  int64_t after_start;  // free once the oldest open interval starts after this
  uint32_t id;
};

// An IntervalOutput's records point at their aggregates' keys without counting them; each
// output pins the engine's graveyard current when it was made. A key the engine drops
// (Engine::Impl::bury) goes into the current graveyard, which then hands over to a new one it
// keeps alive (`next`): so a buried key lives until every output made before it was buried is
// gone.
struct KeyGraveyard {
  std::vector<SeriesKeyRef> keys;
  std::shared_ptr<KeyGraveyard> next;
  // Unlinks the chain it alone holds one by one (no recursion through `next`).
  ~KeyGraveyard() {
    std::shared_ptr<KeyGraveyard> n = std::move(next);
    while (n && n.use_count() == 1) n = std::move(n->next);
  }
};

struct Engine::Impl {
  explicit Impl(EngineOptions o);

  EngineOptions opt;
  int64_t iv_ms;
  EngineStats st;

  std::unordered_map<std::string, AgentState> agents;
  InternMap source_index;
  std::vector<SourceState> sources;
  std::vector<uint32_t> free_sources;         // expired sources' indexes, reused
  std::vector<DeferredFree> dying_sources;
  IdIndex slot_index;  // keys: slots[id].key
  BlockVector<Slot> slots;
  std::vector<uint32_t> free_slots;
  std::vector<DeferredFree> dying_slots;
  IdIndex agg_index;   // keys: aggs[id].key
  BlockVector<Aggregate> aggs;
  std::vector<uint32_t> free_aggs;
  std::vector<DeferredFree> dying_aggs;
  // What every output made now pins; a dropped aggregate's key is buried in it (KeyGraveyard).
  std::shared_ptr<KeyGraveyard> graveyard = std::make_shared<KeyGraveyard>();
  void bury(SeriesKeyRef key);
  void bury_all_keys();  // every aggregate's key, then a new graveyard
  void rotate_graveyard();
  const KeyIn<Slot> slot_key{slots};
  const KeyIn<Aggregate> agg_key{aggs};
  std::deque<Interval> intervals;  // contiguous, ascending starts
  int64_t next_emit_start = kNoInterval;

  WalWriter wal;
  uint64_t wal_start = 0;  // first WAL file not covered by the snapshot
  // Pipelined (after take_wal()): a WalCommitter appends, this engine only applies what it
  // logged; flush() no longer snapshots by itself (snapshot_due/snapshot_at do).
  bool wal_external = false;
  int state_lock_fd = -1;  // flock'd <state_dir>/lock (engine_recovery.cpp)
  Status lock_state_dir();
  ~Impl();

  // Threads: `mu` guards all the state above; every public method takes it. `stats_mu` guards
  // what other threads read without waiting for a rollup: the published stats and each
  // agent's applied seq (a known duplicate is answered without the WAL).
  std::mutex mu;
  mutable std::mutex stats_mu;
  EngineStats published;
  // Per agent: the newest seq applied, logged (durable: answered 200) and admitted (its WAL
  // write may still fail). admit() answers a seq up to `durable` as a duplicate, one up to
  // `admitted` with 503 (its first copy is still being logged), and admits the rest.
  struct SeqMirror {
    uint64_t applied = 0, durable = 0, admitted = 0;
  };
  std::unordered_map<std::string, SeqMirror> seqs;
  // GET /api/v1/sources while a rollup holds `mu`: the last view built (sources_json()).
  std::shared_ptr<const nlohmann::json> published_sources;
  std::atomic<bool> sources_asked{false};  // flush() publishes a view once someone asked
  nlohmann::json sources_view(int64_t now_ms) const;
  // Counted on the ingest thread (pipelined): added to stats().
  std::atomic<uint64_t> front_rejected{0}, front_duplicates{0}, front_wal_failures{0};
  std::atomic<uint64_t> front_wal_bytes{0};
  std::atomic<bool> front_wal_ok{true};
  void publish();
  void mirror_seq(const std::string& agent, uint64_t seq);
  void rebuild_seq_mirror();
  int64_t last_snapshot_ms = 0;
  bool recovering = false;

  std::string key_buf;  // reused per sample
  std::vector<uint8_t> scratch_mark;
  // The rollup's threads (null: threads == 1, everything on the caller) and its buffers.
  std::unique_ptr<ForkJoinPool> pool;
  std::vector<ShardInputs> shard_inputs;
  // Runs task(0..n-1) on the pool's threads (in any order; each writes only its own part).
  void run_parallel(size_t n, const std::function<void(size_t)>& task);

  // engine.cpp
  Status apply_wal_and_ingest(std::string_view body, int64_t now_ms, IngestOutcome& out);
  void apply_batch(const Batch& batch, int64_t now_ms);
  void keep_errors(AgentState& agent, const std::vector<SourceError>& errors);
  uint32_t source_for(const SourceIdentity& id, const std::string& agent, int64_t now_ms);
  const SourceIdentity* known_process_of(const SourceIdentity& id, const std::string& agent,
                                         bool birth) const;
  static bool started_after(const SourceIdentity& id, int64_t read_ms);
  int64_t idle_clock(uint32_t source, int64_t now_ms) const;
  void apply_sample(uint32_t src, size_t pos, bool count_new, const Sample& s, int64_t now_ms);
  Distribution dist_delta(Slot& slot, bool count_new, const std::shared_ptr<const Distribution>& cur);
  void add_dist_totals(const Slot& slot, const Distribution& delta);
  uint32_t slot_for(uint32_t src, size_t pos, const Sample& s, int64_t start, int64_t now_ms);
  uint32_t agg_for(Level level, const SourceIdentity& id, const Sample& s, int64_t start);
  int64_t target_interval(int64_t sample_ms, int64_t now_ms);
  Interval& interval_at(int64_t start);
  Cell& cell_for(Interval& iv, Slot& slot, uint32_t slot_id);
  // Emitted intervals with no re-emission pending keep their cells packed (flush()).
  static void pack(Interval& iv);
  static void unpack(Interval& iv);
  void pack_emitted();
  int64_t retain_floor(int64_t now_ms) const;

  // engine_emit.cpp
  std::vector<IntervalOutput> flush(int64_t now_ms, bool include_current);
  void expire_idle(int64_t now_ms);
  void kill_slot(uint32_t id);
  void release_deferred();

  // engine_rollup_shards.cpp
  IntervalOutput emit_interval(Interval& iv, bool reemit);
  RollupPlan rollup_plan(size_t cells) const;
  void bucket_cells(const Interval& iv, const std::vector<uint8_t>* only, const RollupPlan& plan);
  void count_shard(const Interval& iv, bool reemit, const RollupPlan& plan, size_t shard,
                   ShardOutput& part);
  void write_shard(const Interval& iv, bool reemit, const RollupPlan& plan, size_t shard,
                   ShardOutput& part, IntervalOutput& out);

  // engine_recovery.cpp
  Status replay_wal(uint64_t& next_file, uint64_t& replayed);
  void replay_record(const WalRecord& rec, const std::string& file, uint64_t& replayed);
  void quarantine_record(const WalRecord& rec, const std::string& file, const std::string& why);

  // engine_snapshot.cpp
  Status write_snapshot(int64_t now_ms);
  // The same, covering the WAL files below next_wal (pipelined: the committer has already
  // rotated to next_wal).
  Status write_snapshot_to(int64_t now_ms, uint64_t next_wal, bool open_next);
  // `damaged`: set when the file does not verify (checksum, CBOR, content); the engine's
  // state is then left empty and the error says why.
  Status load_snapshot(bool& found, bool& damaged);
  void discard_loaded_state();
  void quarantine_snapshot(const std::string& why);
  void rebuild_indexes();
};

// Decode a request body for ingest: the batch, or nullopt with `out` set to the answer (400
// malformed, 413 over the limits: the agent splits it, 503 out of memory: it retries).
std::optional<Batch> decode_for_ingest(std::string_view body, const WireLimits& limits,
                                       IngestOutcome& out);

// Holds the engine's lock for one public call and publishes its stats at the end.
struct Locked {
  explicit Locked(Engine::Impl& m) : impl(m), guard(m.mu) {}
  ~Locked() { impl.publish(); }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;
  Engine::Impl& impl;
  std::lock_guard<std::mutex> guard;
};

}  // namespace statherd::server
