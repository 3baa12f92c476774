// prometheus_client multiprocess files (PROMETHEUS_MULTIPROC_DIR/*.db), aggregated per directory
// exactly as prometheus_client's MultiProcessCollector does.
//
// Byte format (checked against prometheus_client 0.16 mmap_dict.py and the newer layout that
// adds a timestamp; docs/FORMAT.md). Native byte order (little-endian on every supported host):
//   offset 0   i32 used      bytes of the file in use (the writer preallocates 64 KiB of zeros
//                            and doubles the file when full); a fresh file has used = 8
//   offset 4   4 bytes padding
//   offset 8   entries, back to back, until `used`:
//     i32 key_len | key (UTF-8 JSON, key_len bytes) | spaces up to the next multiple of 8,
//     counted as key_len + 8 - (key_len + 4) % 8 bytes (so 8 spaces, never 0, when key_len + 4
//     is already a multiple of 8) | f64 value | [f64 timestamp: newer versions only]
//   key = json.dumps([metric_name, sample_name, {label: value}, help], sort_keys=True).
//   The value is 8-byte aligned; the writer stores it with one 8-byte copy, so an aligned load
//   never tears. Versions are not mixed within a file; prometheus_client itself does not
//   detect the version (each release reads only its own layout). We decide per file: the first
//   stride (8 or 16 bytes after the key) whose walk ends exactly at `used` with every key a JSON
//   array wins; the two cannot both fit (the key lengths differ from the entry sizes).
// Concurrency hazards: the writer appends an entry and only then raises `used`, so reading
// `used` once and walking up to it never sees a half-written entry (x86-64 stores are ordered;
// elsewhere a torn new entry fails its JSON check and the file is retried next scrape). A
// (value, timestamp) pair is written as one 16-byte copy that a reader can see half-done: a
// mostrecent gauge may pair a new value with the previous timestamp for one scrape.
// File names: {type}_{pid}.db, and gauge_{mode}_{pid}.db for gauges, where mode is all,
// liveall, min, livemin, max, livemax, sum, livesum, mostrecent or livemostrecent. {pid} is
// whatever the writer's process_identifier returned (a pid unless configured otherwise).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agent/sources/source.h"
#include "agent/sources/stat_file.h"
#include "common/result.h"
#include "common/sample.h"

namespace statherd::agent {

// ---- The pure parser -------------------------------------------------------------------------

inline constexpr uint32_t kPromDbHeaderBytes = 8;
inline constexpr uint32_t kPromDbMaxKeyBytes = 1u << 20;  // a longer key is corruption

struct PromDbEntryLayout {
  uint32_t key_offset = 0;
  uint32_t key_len = 0;
  uint32_t value_offset = 0;  // the f64 value; the timestamp (if any) follows it
};

// Where every entry lives. Valid while the file's bytes below `parsed_to` are unchanged, which
// the writer guarantees (it only appends and rewrites values in place).
struct PromDbLayout {
  uint32_t parsed_to = kPromDbHeaderBytes;  // entries cover [8, parsed_to)
  uint32_t value_bytes = 0;  // 8: value only (<= 0.16); 16: value + timestamp; 0: not known yet
  std::vector<PromDbEntryLayout> entries;
};

// The used size at offset 0, checked: 8 <= used <= bytes.size().
Result<uint32_t> read_prom_db_used(std::span<const uint8_t> bytes);

// Parses the entries in [layout.parsed_to, used) and appends them to `layout` (a fresh layout
// parses everything; a cached one only what the writer appended since). Never reads past
// `bytes`; a truncated or corrupt entry is an Error naming its offset, and `layout` is left as
// it was before the call.
Status extend_prom_db_layout(std::span<const uint8_t> bytes, uint32_t used,
                             PromDbLayout& layout);

// An aligned 8-byte load of the f64 at `offset` (offset + 8 <= bytes.size() is the caller's).
double load_prom_db_double(const uint8_t* bytes, uint32_t offset);

struct PromDbKey {
  std::string metric;  // metric name, e.g. "requests"
  std::string sample;  // sample name, e.g. "requests_total", "latency_bucket"
  Tags labels;         // sorted by key; a repeated key keeps its last value (as json.loads)
  std::string help;
};

// Parses the JSON key [metric, sample, {labels}, help] (string escapes incl. \uXXXX surrogate
// pairs decoded; label values must be strings).
Result<PromDbKey> parse_prom_db_key(std::string_view json);

struct PromDbFileName {
  std::string type;  // counter, gauge, histogram, summary, ...
  std::string mode;  // gauges only: all, liveall, min, ... (empty for other types)
  std::string pid;   // as written; becomes the pid label of all/liveall gauges
};
// "counter_123.db" -> {counter, "", 123}; "gauge_livesum_123.db" -> {gauge, livesum, 123}.
// Split on '_' like prometheus_client: parts[0] is the type, a gauge's parts[1] its mode and
// parts[2] its pid; any other type's pid is parts[1].
Result<PromDbFileName> parse_prom_db_file_name(std::string_view base_name);

struct PromDbEntry {
  PromDbKey key;
  double value = 0;
  double timestamp = 0;  // 0 when the file has no timestamps
};
// Everything in one file's bytes. Convenience for tests, fuzzing and tools.
Result<std::vector<PromDbEntry>> parse_prom_db(std::span<const uint8_t> bytes);

// ---- The Source ------------------------------------------------------------------------------

struct PromMultiprocDir {
  std::string path;
  std::string app;  // empty: the directory's base name
};
// "DIR" or "APP=DIR" (the part before '=' is an app name only if it holds no '/').
PromMultiprocDir parse_prom_multiproc_dir_spec(std::string_view spec);

struct PromMultiprocOptions {
  std::vector<PromMultiprocDir> dirs;
  std::string host;
  // --once: files are copied with pread() into one reused buffer instead of mapped, and nothing
  // is kept between scrapes.
  bool one_shot = false;
  // Files larger than this are refused unread (a per-file SourceError); see stat_file.h.
  uint64_t max_file_bytes = kDefaultMaxFileBytes;
};

// One SourceSamples per directory (the aggregated view; see prom_multiproc_source.cpp for the
// identity, counter and deleted-file rules). Sample names and kinds:
//   counter    sample name as written ("requests_total"), Kind::Counter, summed over files
//   gauge      metric name, Kind::Gauge; all/liveall: one per pid with tag pid=<pid>;
//              min/max/sum/mostrecent (and live*) aggregated over files
//   histogram  metric name, Kind::Distribution Form::Buckets (bounds from `le`, ascending,
//              non-cumulative counts summed over files; count = their sum; sum = `_sum`)
//   summary    metric name, Kind::Distribution Form::Summary (count, sum; no quantiles:
//              prometheus_client writes none in multiprocess mode)
//   other      sample name, Kind::Gauge, summed over files (what the collector does)
class PromMultiprocSource : public Source {
 public:
  explicit PromMultiprocSource(PromMultiprocOptions options);
  ~PromMultiprocSource() override;
  PromMultiprocSource(const PromMultiprocSource&) = delete;
  PromMultiprocSource& operator=(const PromMultiprocSource&) = delete;

  std::string describe() const override;
  std::string kind() const override { return "prom_multiproc"; }
  void scrape(int64_t now_ms, ScrapeReport& out) override;
  size_t mapped_file_count() const;

  struct DirState;  // per directory: mapped files, layouts, series table

 private:
  PromMultiprocOptions options_;
  std::vector<std::unique_ptr<DirState>> dirs_;
};

}  // namespace statherd::agent
