// mmstats v1: the memory-mapped stat files of the 2012 Python `mmstats` library.
//
// Byte format (checked against mmstats 0.8.0 fields.py/models.py/reader.py; docs/FORMAT.md):
//   offset 0   u8 version = 1
//   then fields back to back, unaligned, native byte order, until a label_len of 0 or the end
//   of the file (the writer rounds the file up to whole pages of zeros):
//     u16 label_len | label (UTF-8) | u16 type_len | type | u8 write_buffer | value(s)
//   type is a Python struct code: b B ? h H i I l L q Q f d, or "Ns" (N-byte NUL-padded string).
//   The original writes: CounterField/UInt64Field Q, AverageField/MovingAverageField/TimerField/
//   DoubleField d, FloatField f, IntField i, UIntField I, ShortField h, UShortField H (all
//   buffered); ByteField b, BoolField ?, StringField "255s" (unbuffered); Static{UInt I, Int64 q,
//   UInt64 Q, Float f, Double d, Text "256s"} (unbuffered). MmStats adds sys.pid (I), sys.tid (q),
//   sys.uid (Q), sys.gid (Q), org.python.version (256s), sys.created (d).
//   write_buffer = 255: one value follows (unbuffered). 0 or 1: two values follow; the writer
//   writes values[write_buffer] then flips write_buffer, so the readable one is write_buffer ^ 1.
// Concurrency hazard: the writer uses no barrier and unbuffered values (strings!) are written in
// place, so a reader re-reads write_buffer + value until two consecutive reads agree (bounded).
// That makes buffered numbers safe; an unbuffered string whose writer is preempted half-way
// through a rewrite can still be read torn (both reads agree) — strings are text, never counters.
// Files are named {CMD}-{PID}-{TID}.mmstats in $MMSTATS_PATH or $TMPDIR (env MMSTATS_FILES
// changes the template; MMSTATS_GLOB the reader's glob).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agent/sources/source.h"
#include "agent/sources/stat_file.h"
#include "common/result.h"

namespace statherd::agent {

// ---- The pure parser -------------------------------------------------------------------------

enum class MmstatsValueKind : uint8_t { Number, Bool, Text };

// Where one field lives in the file; valid as long as the file's header bytes are unchanged.
struct MmstatsFieldLayout {
  uint32_t start = 0;         // offset of label_len
  uint32_t label_offset = 0;  // offset of the label bytes
  uint16_t label_len = 0;
  uint32_t wb_offset = 0;     // offset of write_buffer; the value(s) follow it
  uint32_t value_size = 0;    // bytes of one value
  char code = 0;              // struct code; 's' for strings
  bool buffered = false;
  MmstatsValueKind kind = MmstatsValueKind::Number;
};

struct MmstatsLayout {
  std::vector<MmstatsFieldLayout> fields;
  uint32_t end = 0;  // offset just past the last field (the terminator or end of file)
  std::string skeleton;  // every field's header bytes [start, wb_offset), concatenated
};

// Parses the structure (labels, types, offsets) but reads no value. Never reads past `bytes`;
// a truncated, garbage or half-written file is an Error naming the offset.
Result<MmstatsLayout> parse_mmstats_v1_layout(std::span<const uint8_t> bytes);
// The same into `layout`, reusing its capacity (the --once path parses 1,000s of files).
Status parse_mmstats_v1_layout_into(std::span<const uint8_t> bytes, MmstatsLayout& layout);

// True if the structural bytes of `layout` (version, label/type headers, terminator) still read
// the same in `bytes`, i.e. the cached layout may be reused and only values re-read.
bool mmstats_v1_layout_still_valid(std::span<const uint8_t> bytes, const MmstatsLayout& layout);

// One value, read torn-safely: write_buffer and value are copied until two consecutive copies
// agree (at most kMmstatsMaxReadTries). Number/Bool land in *number (bool as 0/1), Text in
// *text (cut at the first NUL, invalid UTF-8 dropped as the original's 'ignore' does).
inline constexpr int kMmstatsMaxReadTries = 8;
Status read_mmstats_v1_value(std::span<const uint8_t> bytes, const MmstatsFieldLayout& field,
                             double* number, std::string* text);

// The same for bytes no writer can change any more (a private copy that was already checked
// against a second copy): one read, no retries.
Status read_mmstats_v1_value_from_copy(std::span<const uint8_t> bytes,
                                       const MmstatsFieldLayout& field, double* number,
                                       std::string* text);

// Label bytes as UTF-8 (invalid sequences dropped).
std::string mmstats_v1_label(std::span<const uint8_t> bytes, const MmstatsFieldLayout& field);
void append_mmstats_v1_label(std::span<const uint8_t> bytes, const MmstatsFieldLayout& field,
                             std::string& out);

struct MmstatsField {
  std::string label;
  std::string type;  // as written, e.g. "Q", "d", "256s"
  bool buffered = false;
  MmstatsValueKind kind = MmstatsValueKind::Number;
  double number = 0;  // Number, and Bool as 0/1
  std::string text;   // Text
};

// Layout + every value. Convenience for tests, fuzzing and tools; the Source uses the pieces.
Result<std::vector<MmstatsField>> parse_mmstats_v1(std::span<const uint8_t> bytes);

// ---- Discovery helpers -----------------------------------------------------------------------

// The default glob, as the original resolves it: $MMSTATS_GLOB, else
// ($MMSTATS_PATH or $TMPDIR or "/tmp") + "/*.mmstats". Null or empty arguments count as unset.
std::string default_mmstats_glob(const char* mmstats_glob, const char* mmstats_path,
                                 const char* tmpdir);
std::string default_mmstats_glob();  // from the environment

// {CMD}-{PID}-{TID}.mmstats -> app = CMD (a trailing ".py" is dropped, so `python3 app.py`
// reports "app"), pid = PID. CMD may itself contain '-'. A name that does not fit gives
// app = the file name without ".mmstats" and pid = -1.
struct MmstatsFileName {
  std::string app;
  int64_t pid = -1;
  int64_t tid = -1;
};
MmstatsFileName parse_mmstats_file_name(std::string_view path);

// Process start time in ms since the epoch: field 22 of <proc_root>/<pid>/stat (clock ticks
// since boot) + btime of <proc_root>/stat. Error if the process or the files are missing.
Result<int64_t> read_boot_time_ms(const std::string& proc_root);
Result<int64_t> read_process_start_ms(const std::string& proc_root, int64_t pid,
                                      int64_t boot_time_ms);

// Default counter label patterns (fnmatch-style: '*', '?', '[...]'), matched against the whole
// label. mmstats v1 carries no metric kind; CounterField is 'Q' but so is UInt64Field, so labels
// decide. Defaults, chosen for how CounterFields are usually named:
//   "*count" "*counter" "*total" "*requests" "*errors"
// e.g. "requests.count", "http_errors", "bytes_total", "hits.counter". Everything else numeric
// is a gauge, bools are gauges 0/1, strings are text. Strings are never counters.
const std::vector<std::string>& default_mmstats_counter_patterns();

// A precompiled set of patterns (fast paths for "*suffix", "prefix*", "*infix*", literals).
class LabelPatternSet {
 public:
  explicit LabelPatternSet(const std::vector<std::string>& patterns);
  bool matches(std::string_view label) const;

 private:
  enum class Shape : uint8_t { Literal, Suffix, Prefix, Infix, General };
  struct Pattern {
    Shape shape;
    std::string text;  // the literal part, or the whole pattern for General
  };
  std::vector<Pattern> patterns_;
};
bool glob_match(std::string_view pattern, std::string_view text);

// ---- The Source ------------------------------------------------------------------------------

struct MmstatsV1Options {
  std::vector<std::string> globs;             // empty: { default_mmstats_glob() }
  std::vector<std::string> counter_patterns;  // empty: default_mmstats_counter_patterns()
  std::string host;
  std::string proc_root = "/proc";
  // A file whose process started after this (ms since epoch) is fresh even on the first scrape
  // (the agent main sets it from its persisted last-scan time). 0: off.
  int64_t fresh_if_started_after_ms = 0;
  // One scrape and exit (--once): each file is copied with pread() into a reused buffer instead
  // of being mapped, nothing is kept between scrapes, and /proc is not read (start_time_ms stays
  // 0 and `fresh` false: neither is part of the --once output). Torn-read rule as for mapped
  // files: a second copy must agree with the first, else the file is mapped and read that way.
  bool one_shot = false;
  // Files larger than this are refused unread (a per-file SourceError); see stat_file.h.
  uint64_t max_file_bytes = kDefaultMaxFileBytes;
  // Where the start times sent for files are kept across agent restarts (start_time_memory.h);
  // "": not kept.
  std::string start_times_file;
};

class MmstatsV1Source : public Source {
 public:
  explicit MmstatsV1Source(MmstatsV1Options options);
  ~MmstatsV1Source() override;
  MmstatsV1Source(const MmstatsV1Source&) = delete;
  MmstatsV1Source& operator=(const MmstatsV1Source&) = delete;

  std::string describe() const override;
  std::string kind() const override { return "mmstats_v1"; }
  void scrape(int64_t now_ms, ScrapeReport& out) override;
  // Like scrape(), but hands each file's samples to `on_source` as soon as they are read instead
  // of collecting them all (the --once path streams 100,000s of samples this way).
  void scrape_each(int64_t now_ms, const SourceSamplesVisitor& on_source,
                   std::vector<SourceError>& errors) override;

  void set_fresh_if_started_after_ms(int64_t ms);
  size_t mapped_file_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace statherd::agent
