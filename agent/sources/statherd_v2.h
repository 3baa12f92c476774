// statherd v2: the memory-mapped stat files written by clients/python/statherd.
//
// Byte format (docs/FORMAT.md "statherd v2 stat files"; all integers little-endian, every record
// starts on an 8-byte boundary):
//   header (256 bytes): "STHRDv2\0" | u32 version = 2 | u32 header_size = 256 | u64 pid |
//     u64 start_time_ms | u64 heartbeat_ms | u64 used | u64 generation | u16 app_len | app
//   records from offset 256 up to `used`:
//     u32 record_size | u8 kind | u8 flags | u16 name_len | u16 tags_len | u16 reserved |
//     name | tags (n x key\0value\0) | zero padding to 8 | u64 seq | value area
//   value area: counter/gauge f64 | text u32 capacity, u32 length, bytes |
//     histogram f64 count, sum, min, max, zero_count, i32 bucket_offset, u32 n_buckets,
//     n_buckets x f64 counts (counts[k] is sketch bucket bucket_offset + k, common/sketch.h).
// Concurrency hazard: the writer bumps seq to odd, writes the value area, bumps it to even.
// A reader copies the value area between two reads of seq and keeps the copy only if both reads
// are the same even number (bounded retries; past that the field is skipped for this scrape).
// `used` is written after a new record is complete, so nothing at or past `used` is read.
// A record of an unknown kind (not 1-4) is skipped once its size is checked (newer writers).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "agent/sources/source.h"
#include "agent/sources/stat_file.h"
#include "common/result.h"

namespace statherd::agent {

// ---- The pure parser -------------------------------------------------------------------------

inline constexpr size_t kStatherdV2HeaderSize = 256;
inline constexpr uint32_t kStatherdV2Version = 2;
inline constexpr int kStatherdV2MaxReadTries = 8;
// Bounds on what one record may claim (a hostile file must not make us allocate much).
inline constexpr uint32_t kStatherdV2MaxBuckets = 1u << 16;

struct StatherdV2Header {
  uint32_t version = 0;
  int64_t pid = -1;
  int64_t start_time_ms = 0;
  int64_t heartbeat_ms = 0;
  uint64_t used = 0;  // offset just past the last complete record
  uint64_t generation = 0;
  std::string app;
};

enum class StatherdV2Kind : uint8_t { Counter = 1, Gauge = 2, Histogram = 3, Text = 4 };

// One record's structure; it never changes once the record is below `used`.
struct StatherdV2Record {
  uint64_t offset = 0;        // record start
  uint32_t size = 0;          // record_size
  StatherdV2Kind kind = StatherdV2Kind::Gauge;
  std::string name;
  Tags tags;                  // sorted by key, keys unique (a repeated key keeps the last value)
  uint64_t seq_offset = 0;    // the u64 seq; the value area follows it
  uint32_t value_size = 0;    // bytes from seq_offset + 8 to the record's end
};

// A consistent copy of one record's value area, decoded.
struct StatherdV2Value {
  double number = 0;  // counter, gauge
  std::string text;   // text
  // histogram
  double count = 0, sum = 0, min = 0, max = 0, zero_count = 0;
  int32_t bucket_offset = 0;
  std::vector<double> counts;
};

// Reads and checks the header (magic, version, header size, app name, `used` within bytes).
Result<StatherdV2Header> parse_statherd_v2_header(std::span<const uint8_t> bytes);

// Parses the records in [from, used) and appends them to `records`. Every length is checked
// against the record and `used` (and used against bytes); the error names the offset. On error,
// the records before the bad one have been appended.
Status parse_statherd_v2_records(std::span<const uint8_t> bytes, uint64_t from, uint64_t used,
                                 std::vector<StatherdV2Record>& records);

// Copies `record`'s value area between two equal even reads of its seq (at most
// kStatherdV2MaxReadTries tries) and decodes it into `value` (reusing its capacity).
Status read_statherd_v2_value(std::span<const uint8_t> bytes, const StatherdV2Record& record,
                              StatherdV2Value& value);

// Fills `sample` (name, tags, kind, value/text/dist; not the timestamp) from a record's value.
// Histograms become Distribution Form::Sketch (alpha 0.01, leading/trailing zero buckets
// trimmed); an empty histogram (count 0) is reported as an empty sketch (count 0).
Status statherd_v2_sample(const StatherdV2Record& record, const StatherdV2Value& value,
                          Sample& sample);

// Header + every record + every value, for tests, fuzzing and tools.
struct StatherdV2File {
  StatherdV2Header header;
  std::vector<StatherdV2Record> records;
  std::vector<StatherdV2Value> values;
};
Result<StatherdV2File> parse_statherd_v2(std::span<const uint8_t> bytes);

// ---- The Source ------------------------------------------------------------------------------

// $STATHERD_DIR/*.statherd, STATHERD_DIR default $TMPDIR/statherd, TMPDIR default /tmp.
// Null or empty arguments count as unset.
std::string default_statherd_v2_glob(const char* statherd_dir, const char* tmpdir);
std::string default_statherd_v2_glob();  // from the environment

struct StatherdV2Options {
  std::vector<std::string> globs;  // empty: { default_statherd_v2_glob() }
  std::string host;
  std::string proc_root = "/proc";
  // A file whose process started after this (ms since epoch) is fresh even on the first scrape
  // (the agent main sets it from its persisted last-scan time). 0: off.
  int64_t fresh_if_started_after_ms = 0;
  // One scrape and exit (--once): nothing is kept mapped and /proc is not read.
  bool one_shot = false;
  // Files larger than this are refused unread (a per-file SourceError); see stat_file.h.
  uint64_t max_file_bytes = kDefaultMaxFileBytes;
};

class StatherdV2Source : public Source {
 public:
  explicit StatherdV2Source(StatherdV2Options options);
  ~StatherdV2Source() override;
  StatherdV2Source(const StatherdV2Source&) = delete;
  StatherdV2Source& operator=(const StatherdV2Source&) = delete;

  std::string describe() const override;
  std::string kind() const override { return "statherd_v2"; }
  void scrape(int64_t now_ms, ScrapeReport& out) override;

  void set_fresh_if_started_after_ms(int64_t ms);
  size_t mapped_file_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace statherd::agent
