// Checkpoint and recovery. The snapshot (<state_dir>/snapshot, written tmp + fsync + rename,
// mode 0600) is CBOR of a versioned JSON document holding the complete engine state; the WAL
// files numbered >= its "wal_seq" hold every batch acknowledged after it. Recovery = load the
// snapshot + replay those WAL records with the server clock they were ingested at; dedup on
// agent seq keeps a batch from counting twice. Intervals emitted after the snapshot are emitted
// again after a crash (same values; Carbon keeps the last write), which also re-sends what a
// sink may have lost in its queue; remote_write skips what its receiver already holds
// (sinks/remote_write_hwm.h). Each aggregate's running totals (total_count, total_sum: the
// exported fleet totals) are in the snapshot and grow again through the replayed batches.
// Since version 4 the CBOR is followed by an 8-byte trailer: "SHSC" | u32 LE crc32(the CBOR
// bytes) (docs/FORMAT.md); a snapshot that does not verify is quarantined by open()
// (engine_recovery.cpp). Snapshots of earlier versions have no trailer and are still read.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <stdexcept>

#include "common/log.h"
#include "server/cbor_writer.h"
#include "server/engine_impl.h"

namespace statherd::server {
namespace {

using json = nlohmann::json;
// 1: distributions wire-encoded, no last_dist; 2: no running totals (they start at 0 once);
// 3: each aggregate's total_count and total_sum (the exported fleet totals); 4: the same
// document followed by the checksum trailer; 5: an emitted interval's cells may be one byte
// string (packed, server/interval_cells.h).
constexpr int kSnapshotVersion = 5;
constexpr char kTrailerMagic[4] = {'S', 'H', 'S', 'C'};
constexpr size_t kTrailerBytes = 8;

// The snapshot's document: the CBOR verified against its trailer (version >= 4), or a whole
// file of CBOR (versions 1-3). Throws on any mismatch or undecodable byte.
json read_verified(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) throw std::runtime_error("read error");
  bool trailer = bytes.size() >= kTrailerBytes &&
                 std::memcmp(bytes.data() + bytes.size() - kTrailerBytes, kTrailerMagic, 4) == 0;
  std::string_view body(bytes.data(), bytes.size() - (trailer ? kTrailerBytes : 0));
  if (trailer) {
    uint32_t stored = 0;
    for (int i = 0; i < 4; ++i)
      stored |= uint32_t{static_cast<uint8_t>(bytes[bytes.size() - 4 + i])} << (8 * i);
    if (stored != crc32_ieee(body)) throw std::runtime_error("checksum mismatch");
  }
  json j = json::from_cbor(body);
  if (!trailer && j.at("version").get<int>() >= 4)
    throw std::runtime_error("checksum trailer missing (a cut or altered file)");
  return j;
}

json bin(std::string_view s) { return json::binary(std::vector<uint8_t>(s.begin(), s.end())); }
std::string unbin(const json& j) {
  const auto& b = j.get_binary();
  return std::string(b.begin(), b.end());
}

// Distributions are written field by field (version 2). Version 1 went through the wire codec
// with an empty source identity, which the decoder refused ("bad distribution in snapshot").
json store_to_json(const Sketch::Store& s) { return {s.offset, s.counts}; }
Sketch::Store store_from_json(const json& j) {
  return {j.at(0).get<int32_t>(), j.at(1).get<std::vector<double>>()};
}

json dist_to_json(const Distribution& d) {
  const int form = static_cast<int>(d.form);
  switch (d.form) {
    case Distribution::Form::Sketch: {
      const Sketch& k = d.sketch;
      return {form, k.alpha(), store_to_json(k.positive()), store_to_json(k.negative()),
              k.zero_count(), k.count(), k.sum(), k.empty() ? 0.0 : k.min(),
              k.empty() ? 0.0 : k.max()};
    }
    case Distribution::Form::Buckets:
      return {form, d.bucket_upper_bounds, d.bucket_counts, d.count, d.sum, d.sum_unknown};
    case Distribution::Form::Summary: {
      json q = json::array();
      for (const auto& [quantile, v] : d.quantiles) q.push_back({quantile, v});
      return {form, d.count, d.sum, d.min, d.max, std::move(q), d.sum_unknown};
    }
  }
  return nullptr;
}

Distribution dist_from_json(const json& j) {
  Distribution d;
  d.form = static_cast<Distribution::Form>(j.at(0).get<int>());
  switch (d.form) {
    case Distribution::Form::Sketch:
      if (!d.sketch.assign(j.at(1), store_from_json(j.at(2)), store_from_json(j.at(3)), j.at(4),
                           j.at(5), j.at(6), j.at(7), j.at(8)))
        throw std::runtime_error("inconsistent sketch in snapshot");
      return d;
    case Distribution::Form::Buckets:
      d.bucket_upper_bounds = j.at(1).get<std::vector<double>>();
      d.bucket_counts = j.at(2).get<std::vector<double>>();
      d.count = j.at(3); d.sum = j.at(4);
      d.sum_unknown = j.size() > 5 && j.at(5).get<bool>();  // absent before the flag
      return d;
    case Distribution::Form::Summary:
      d.count = j.at(1); d.sum = j.at(2); d.min = j.at(3); d.max = j.at(4);
      for (const auto& q : j.at(5)) d.quantiles.emplace_back(q.at(0), q.at(1));
      d.sum_unknown = j.size() > 6 && j.at(6).get<bool>();  // absent before the flag
      return d;
  }
  throw std::runtime_error("unknown distribution form in snapshot");
}

// Version 1: a wire-encoded batch of one source holding the distribution.
Distribution dist_from_v1(const json& j) {
  Result<Batch> b = decode_batch(unbin(j));
  if (!b || b->sources.empty() || b->sources[0].samples.empty() || !b->sources[0].samples[0].dist)
    throw std::runtime_error(
        "bad distribution in snapshot (a version 1 snapshot: this build cannot read its "
        "distributions)");
  return *b->sources[0].samples[0].dist;
}

Tags tags_from_json(const json& j) {
  Tags t;
  for (const auto& kv : j) t.emplace_back(unbin(kv[0]), unbin(kv[1]));
  return t;
}

json deferred_to_json(const std::vector<DeferredFree>& v) {
  json a = json::array();
  for (const auto& d : v) a.push_back({d.after_start, d.id});
  return a;
}
std::vector<DeferredFree> deferred_from_json(const json& j) {
  std::vector<DeferredFree> v;
  for (const auto& d : j) v.push_back({d[0].get<int64_t>(), d[1].get<uint32_t>()});
  return v;
}


// The snapshot being written, as its bytes come (CborWriter spills them here a few MB at a
// time, so a large state never sits in memory twice): <name>.tmp, then fsync, rename, fsync of
// the directory. The first failure sticks and finish() returns it; a file not finished is
// removed (no half-written file left holding space).
class SnapshotFile {
 public:
  SnapshotFile(const std::string& dir, const std::string& name)
      : dir_(dir), tmp_(dir + "/" + name + ".tmp"), final_(dir + "/" + name) {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) error_ = "cannot create " + tmp_ + ": " + std::strerror(errno);
  }
  ~SnapshotFile() {
    if (fd_ < 0) return;
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
  SnapshotFile(const SnapshotFile&) = delete;
  SnapshotFile& operator=(const SnapshotFile&) = delete;

  // Appends bytes the checksum covers.
  void write(std::span<const uint8_t> bytes) {
    crc_ = crc32_ieee_update(crc_, {reinterpret_cast<const char*>(bytes.data()), bytes.size()});
    write_raw(bytes);
  }
  // The trailer ("SHSC" | u32 LE crc of everything written before it), fsync, rename.
  Status finish() {
    uint8_t trailer[kTrailerBytes];
    std::memcpy(trailer, kTrailerMagic, 4);
    for (int i = 0; i < 4; ++i) trailer[4 + i] = static_cast<uint8_t>(crc_ >> (8 * i));
    write_raw(trailer);
    if (error_.empty() && ::fsync(fd_) != 0) fail("fsync failed for");
    if (!error_.empty()) return make_error(error_);
    ::close(fd_);
    fd_ = -1;
    if (::rename(tmp_.c_str(), final_.c_str()) != 0) {
      const std::string why = std::strerror(errno);
      ::unlink(tmp_.c_str());
      return make_error("cannot rename " + tmp_ + ": " + why);
    }
    return fsync_dir(dir_);
  }

 private:
  void write_raw(std::span<const uint8_t> bytes) {
    for (size_t done = 0; error_.empty() && done < bytes.size();) {
      ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return fail("cannot write");
      done += static_cast<size_t>(n);
    }
  }
  void fail(const std::string& what) {
    if (error_.empty()) error_ = what + " " + tmp_ + ": " + std::strerror(errno);
  }

  std::string dir_, tmp_, final_;
  int fd_ = -1;
  uint32_t crc_ = 0;
  std::string error_;
};

}  // namespace

Status Engine::Impl::write_snapshot(int64_t now_ms) {
  return write_snapshot_to(now_ms, wal.number() + 1, true);
}

// Streamed (CborWriter): the large arrays (sources, slots, aggregates, interval cells) go
// straight to bytes, without a document in memory; the small parts through nlohmann::json.
// The bytes decode (json::from_cbor) to the same document load_snapshot() has always read.
Status Engine::Impl::write_snapshot_to(int64_t now_ms, uint64_t next_wal, bool open_next) {
  SnapshotFile file(opt.state_dir, "snapshot");
  std::vector<uint8_t> bytes;
  CborWriter w(bytes, [&](std::span<const uint8_t> part) { file.write(part); });
  auto small = [&](std::string_view key, const json& value) {
    w.text(key);
    w.raw(json::to_cbor(value));
  };
  w.map(18);
  small("format", "statherd-engine-snapshot");
  small("version", kSnapshotVersion);
  small("interval_ms", iv_ms);
  small("wal_seq", next_wal);
  small("saved_ms", now_ms);
  small("next_emit_start", next_emit_start);
  small("stats", {st.batches, st.duplicates + front_duplicates.load(),
                  st.rejected_batches + front_rejected.load(), st.samples_in,
                  st.series_rejected, st.late_samples, st.resets});
  json ag = json::array();
  for (const auto& [id, a] : agents) {
    json errs = json::array();
    for (const auto& e : a.errors) errs.push_back({bin(e.source), bin(e.message)});
    ag.push_back({bin(id), a.last_seq, a.last_seen_ms, std::move(errs), a.last_read_ms});
  }
  small("agents", ag);
  w.text("sources");
  w.array(sources.size());
  for (const auto& x : sources) {
    if (!x.alive) { w.null(); continue; }  // dead: only its index matters
    w.array(9);
    w.bytes(x.id.host); w.bytes(x.id.app); w.integer(x.id.pid); w.integer(x.id.start_time_ms);
    w.bytes(x.id.path); w.bytes(x.agent_id); w.integer(x.last_seen_ms); w.uint(x.batches);
    w.boolean(x.alive);
  }
  w.text("slots");
  w.array(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& x = slots[i];
    if (!x.alive && x.key.empty()) { w.null(); continue; }  // recycled: free
    w.array(11);
    w.bytes(x.key); w.uint(x.source); w.uint(x.agg[0]); w.uint(x.agg[1]); w.uint(x.agg[2]);
    w.integer(static_cast<int>(x.kind)); w.boolean(x.alive); w.boolean(x.has_last);
    w.float64(x.last_cumulative); w.integer(x.last_seen_ms);
    if (x.last_dist) w.raw(json::to_cbor(dist_to_json(*x.last_dist)));
    else w.null();
  }
  w.text("aggs");
  w.array(aggs.size());
  for (size_t i = 0; i < aggs.size(); ++i) {
    const Aggregate& a = aggs[i];
    if (!a.alive && a.key.empty()) { w.null(); continue; }  // recycled: free
    w.array(16);
    w.bytes(a.key); w.integer(static_cast<int>(a.level)); w.integer(static_cast<int>(a.kind));
    const SeriesKey& what = *a.series_key;
    w.bytes(what.app); w.bytes(what.host); w.bytes(what.metric); w.integer(what.pid);
    w.array(what.tags.size());
    for (const auto& [k, v] : what.tags) { w.array(2); w.bytes(k); w.bytes(v); }
    for (const Ewma* e : {&a.meter.m1, &a.meter.m5, &a.meter.m15}) {
      w.array(2); w.float64(e->rate()); w.boolean(e->initialized());
    }
    w.float64(a.pending_late); w.integer(a.first_start); w.boolean(a.alive);
    w.float64(a.total_count); w.float64(a.total_sum);
  }
  small("free_slots", free_slots);
  small("free_aggs", free_aggs);
  small("free_sources", free_sources);
  small("dying_sources", deferred_to_json(dying_sources));
  small("dying_slots", deferred_to_json(dying_slots));
  small("dying_aggs", deferred_to_json(dying_aggs));
  w.text("intervals");
  w.array(intervals.size());
  for (const auto& iv : intervals) {
    w.array(5);
    w.integer(iv.start); w.boolean(iv.emitted);
    if (iv.is_packed) {  // version 5: an emitted interval's cells as packed (interval_cells.h)
      w.bytes({reinterpret_cast<const char*>(iv.packed.data()), iv.packed.size()});
    } else {
      w.array(iv.cells.size());
      for (const auto& c : iv.cells) { w.array(3); w.uint(c.slot); w.uint(c.dist); w.float64(c.value); }
    }
    w.array(iv.dists.size());
    for (const auto& d : iv.dists) w.raw(json::to_cbor(dist_to_json(d)));
    w.array(iv.changed_slots.size());
    for (uint32_t id : iv.changed_slots) w.uint(id);
  }
  w.finish();
  file.write(bytes);
  Status written = file.finish();
  if (!written) return written;
  if (open_next) {
    Status opened = wal.open(opt.state_dir, next_wal, opt.fsync);
    if (!opened) return opened;
  }
  wal_start = next_wal;
  remove_wal_files_before(opt.state_dir, next_wal);
  last_snapshot_ms = now_ms;
  return Ok{};
}

void Engine::Impl::discard_loaded_state() {
  st = EngineStats{};
  agents.clear();
  sources.clear(); free_sources.clear(); dying_sources.clear();
  slots.clear(); free_slots.clear(); dying_slots.clear();
  bury_all_keys();  // an output made before may still point at them
  aggs.clear(); free_aggs.clear(); dying_aggs.clear();
  intervals.clear();
  next_emit_start = kNoInterval;
  wal_start = 0;
}

Status Engine::Impl::load_snapshot(bool& found, bool& damaged) {
  std::string path = opt.state_dir + "/snapshot";
  std::error_code ec;
  found = std::filesystem::exists(path, ec);
  damaged = false;
  if (!found) return Ok{};
  const std::string hint = "move " + path + " and the wal-*.log files aside to start empty";
  json j;
  try {
    j = read_verified(path);
  } catch (const std::exception& e) {
    damaged = true;
    return make_error("snapshot " + path + " does not verify: " + e.what());
  }
  try {
    const int version = j.at("version").get<int>();
    if (j.at("format") != "statherd-engine-snapshot" || version < 1 || version > kSnapshotVersion)
      return make_error("snapshot " + path + " has an unknown format or version", hint);
    if (j.at("interval_ms").get<int64_t>() != iv_ms)
      return make_error("snapshot " + path + " was written with interval " +
                            std::to_string(j.at("interval_ms").get<int64_t>()) + " ms",
                        "the state (fleet totals, counter baselines, open intervals) is kept per "
                        "interval: start with the old interval again, or, to change it, stop the "
                        "server (SIGTERM) and " + hint + "; the exported totals then restart from "
                        "0 (docs/OPERATIONS.md, \"Changing interval\")");
    wal_start = j.at("wal_seq").get<uint64_t>();
    next_emit_start = j.at("next_emit_start").get<int64_t>();
    const json& s = j.at("stats");
    st.batches = s[0]; st.duplicates = s[1]; st.rejected_batches = s[2]; st.samples_in = s[3];
    st.series_rejected = s[4]; st.late_samples = s[5]; st.resets = s[6];
    for (const auto& a : j.at("agents")) {
      AgentState& ag = agents[unbin(a[0])];
      ag.last_seq = a[1]; ag.last_seen_ms = a[2];
      for (const auto& e : a[3]) ag.errors.push_back({unbin(e[0]), unbin(e[1])});
      if (a.size() > 4) ag.last_read_ms = a[4];  // absent in snapshots of earlier builds
    }
    for (const auto& x : j.at("sources")) {
      SourceState src;
      if (x.is_null()) {
        src.alive = false;
        sources.push_back(std::move(src));
        continue;
      }
      src.id = {unbin(x[0]), unbin(x[1]), x[2], x[3], unbin(x[4])};
      src.agent_id = unbin(x[5]); src.last_seen_ms = x[6]; src.batches = x[7]; src.alive = x[8];
      sources.push_back(std::move(src));
    }
    for (const auto& x : j.at("slots")) {
      Slot sl;
      if (x.is_null()) { slots.push_back(std::move(sl)); continue; }
      sl.key = unbin(x[0]); sl.source = x[1]; sl.agg[0] = x[2]; sl.agg[1] = x[3]; sl.agg[2] = x[4];
      sl.kind = static_cast<Kind>(x[5].get<int>()); sl.alive = x[6]; sl.has_last = x[7];
      sl.last_cumulative = x[8]; sl.last_seen_ms = x[9];
      if (version >= 2 && !x.at(10).is_null())
        sl.last_dist = std::make_shared<const Distribution>(dist_from_json(x[10]));
      slots.push_back(std::move(sl));
    }
    for (const auto& x : j.at("aggs")) {
      Aggregate a;
      if (x.is_null()) { aggs.push_back(std::move(a)); continue; }
      a.key = unbin(x[0]); a.level = static_cast<Level>(x[1].get<int>());
      a.kind = static_cast<Kind>(x[2].get<int>());
      a.series_key = make_series_key(a.level, unbin(x[3]), unbin(x[4]), x[6], unbin(x[5]),
                                     tags_from_json(x[7]));
      a.meter = Meter(static_cast<double>(iv_ms) / 1000.0);
      a.meter.m1.restore(x[8][0], x[8][1]);
      a.meter.m5.restore(x[9][0], x[9][1]);
      a.meter.m15.restore(x[10][0], x[10][1]);
      a.pending_late = x[11]; a.first_start = x[12]; a.alive = x[13];
      if (version >= 3) { a.total_count = x.at(14); a.total_sum = x.at(15); }
      aggs.push_back(std::move(a));
    }
    free_slots = j.at("free_slots").get<std::vector<uint32_t>>();
    free_aggs = j.at("free_aggs").get<std::vector<uint32_t>>();
    if (version >= 2) {
      free_sources = j.at("free_sources").get<std::vector<uint32_t>>();
      dying_sources = deferred_from_json(j.at("dying_sources"));
    }
    dying_slots = deferred_from_json(j.at("dying_slots"));
    dying_aggs = deferred_from_json(j.at("dying_aggs"));
    for (const auto& x : j.at("intervals")) {
      Interval iv;
      iv.start = x[0]; iv.emitted = x[1];
      if (version >= 5 && x[2].is_binary()) {
        const auto& packed = x[2].get_binary();
        iv.packed.assign(packed.begin(), packed.end());
        for (const Cell& c : unpack_cells(iv.packed))  // throws on bytes pack_cells() did not write
          if (c.slot >= slots.size() || (c.dist != kNone && x[3].size() <= c.dist))
            throw std::runtime_error("packed interval cells name a slot or dist that is not there");
        iv.is_packed = true;
      } else {
        for (const auto& c : x[2]) iv.cells.push_back(Cell{c[0], c[1], c[2]});
      }
      for (const auto& d : x[3]) iv.dists.push_back(version >= 2 ? dist_from_json(d) : dist_from_v1(d));
      iv.changed_slots = x[4].get<std::vector<uint32_t>>();
      intervals.push_back(std::move(iv));
    }
    // Version 1 kept each slot's latest cumulative distribution in its interval cells: the
    // newest one is the state the next sample's delta is taken against.
    if (version == 1)
      for (const Interval& iv : intervals)
        for (const Cell& c : iv.cells)
          if (c.dist != kNone && c.slot < slots.size())
            slots[c.slot].last_dist = std::make_shared<const Distribution>(iv.dists.at(c.dist));
  } catch (const std::exception& e) {
    discard_loaded_state();  // half loaded: start from the WAL alone
    damaged = true;
    return make_error("snapshot " + path + " is unreadable: " + e.what());
  }
  rebuild_indexes();
  return Ok{};
}

void Engine::Impl::rebuild_indexes() {
  st.sources = st.series = 0;
  for (uint32_t i = 0; i < sources.size(); ++i)
    if (sources[i].alive) { source_index.emplace(sources[i].id.key(), i); ++st.sources; }
  for (auto& s : sources) s.series = 0;
  aggs.for_each([](Aggregate& a) { a.live_slots = 0; });
  for (uint32_t i = 0; i < slots.size(); ++i) {
    Slot& sl = slots[i];
    if (!sl.alive) continue;
    // A key listed twice (a damaged snapshot) stays with its first slot.
    if (slot_index.find(sl.key, slot_key) == IdIndex::kNone) slot_index.insert(sl.key, i);
    ++sources[sl.source].series;
    ++st.series;
    for (uint32_t a : sl.agg) if (a != kNone) ++aggs[a].live_slots;
  }
  for (uint32_t i = 0; i < aggs.size(); ++i)
    if (aggs[i].alive && agg_index.find(aggs[i].key, agg_key) == IdIndex::kNone)
      agg_index.insert(aggs[i].key, i);
  for (const Interval& iv : intervals) {
    std::vector<Cell> unpacked;  // a packed interval's cells, decoded once here
    if (iv.is_packed) unpacked = unpack_cells(iv.packed);
    const std::vector<Cell>& cells = iv.is_packed ? unpacked : iv.cells;
    for (uint32_t p = 0; p < cells.size(); ++p) {
      Slot& sl = slots[cells[p].slot];
      sl.cache_start = iv.start;
      sl.cache_pos = p;
    }
  }
}

}  // namespace statherd::server
