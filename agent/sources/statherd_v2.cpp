// statherd v2 parser: header, records and seqlock-consistent value reads over a byte span.
// Format and hazards: statherd_v2.h and docs/FORMAT.md. Nothing here reads at or past `used`
// (itself checked against the span), and every length is checked before it is used.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "agent/sources/statherd_v2.h"

namespace statherd::agent {
namespace {

constexpr char kMagic[8] = {'S', 'T', 'H', 'R', 'D', 'v', '2', '\0'};
constexpr size_t kRecordHeadSize = 12;     // u32 size, u8 kind, u8 flags, u16 name, u16 tags, u16
constexpr size_t kHistogramHeadSize = 48;  // 5 x f64, i32 offset, u32 n_buckets
constexpr size_t kTextHeadSize = 8;        // u32 capacity, u32 length
constexpr uint16_t kMaxAppLen = 190;

// Little-endian loads from any alignment (the format is little-endian on every host).
uint64_t load_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint32_t load_u32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
uint16_t load_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
double load_f64(const uint8_t* p) {
  const uint64_t bits = load_u64(p);
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

std::string at(uint64_t offset) { return " at offset " + std::to_string(offset); }

Error corrupt(const std::string& what, uint64_t offset) {
  return make_error("statherd v2: " + what + at(offset),
                    "the file is truncated or was not written by clients/python/statherd; "
                    "delete it if its process is gone");
}

// The writer's seq, read as one acquire load when aligned (it is in a mapped file, whose pages
// are aligned, and every record is 8-aligned); a byte copy otherwise (spans in tests/fuzzing).
uint64_t load_seq(const uint8_t* p) {
  if (reinterpret_cast<uintptr_t>(p) % alignof(uint64_t) == 0)
    return __atomic_load_n(reinterpret_cast<const uint64_t*>(p), __ATOMIC_ACQUIRE);
  return load_u64(p);
}

// Parses "key\0value\0..." into sorted, de-duplicated tags.
Status parse_tags(const uint8_t* p, size_t n, uint64_t offset, Tags& tags) {
  tags.clear();
  size_t i = 0;
  while (i < n) {
    const auto* key_end = static_cast<const uint8_t*>(std::memchr(p + i, 0, n - i));
    if (!key_end) return corrupt("tag key without its NUL terminator", offset + i);
    const size_t key_len = static_cast<size_t>(key_end - (p + i));
    if (key_len == 0) return corrupt("empty tag key", offset + i);
    const size_t value_start = i + key_len + 1;
    const auto* value_end =
        value_start < n ? static_cast<const uint8_t*>(std::memchr(p + value_start, 0, n - value_start))
                        : nullptr;
    if (!value_end) return corrupt("tag value without its NUL terminator", offset + value_start);
    std::string key(reinterpret_cast<const char*>(p + i), key_len);
    std::string value(reinterpret_cast<const char*>(p + value_start),
                      static_cast<size_t>(value_end - (p + value_start)));
    auto it = std::lower_bound(tags.begin(), tags.end(), key,
                               [](const auto& kv, const std::string& k) { return kv.first < k; });
    if (it != tags.end() && it->first == key) it->second = std::move(value);  // last one wins
    else tags.emplace(it, std::move(key), std::move(value));
    i = static_cast<size_t>(value_end - p) + 1;
  }
  return Ok{};
}

size_t min_value_size(StatherdV2Kind kind) {
  switch (kind) {
    case StatherdV2Kind::Counter:
    case StatherdV2Kind::Gauge: return 8;
    case StatherdV2Kind::Text: return kTextHeadSize;
    case StatherdV2Kind::Histogram: return kHistogramHeadSize;
  }
  return 0;
}

// Parses the record at `offset` (which is below used). Returns false in *known for a kind this
// reader does not know (the record is skipped; its size was still checked).
Status parse_record(std::span<const uint8_t> bytes, uint64_t offset, uint64_t used,
                    StatherdV2Record& r, bool* known) {
  if (used - offset < kRecordHeadSize) return corrupt("record header runs past `used`", offset);
  const uint8_t* p = bytes.data() + offset;
  r.offset = offset;
  r.size = load_u32(p);
  const uint8_t kind = p[4];
  const uint16_t name_len = load_u16(p + 6);
  const uint16_t tags_len = load_u16(p + 8);
  if (r.size % 8 != 0) return corrupt("record_size " + std::to_string(r.size) + " is not a multiple of 8", offset);
  if (r.size > used - offset)
    return corrupt("record_size " + std::to_string(r.size) + " runs past `used` (" + std::to_string(used) + ")", offset);
  const uint64_t seq_offset = offset + ((kRecordHeadSize + name_len + tags_len + 7) / 8) * 8;
  if (seq_offset + 8 > offset + r.size)
    return corrupt("record_size " + std::to_string(r.size) + " is smaller than its header, name and tags", offset);
  r.seq_offset = seq_offset;
  r.value_size = static_cast<uint32_t>(offset + r.size - (seq_offset + 8));
  *known = kind >= 1 && kind <= 4;
  if (!*known) return Ok{};
  r.kind = static_cast<StatherdV2Kind>(kind);
  if (r.value_size < min_value_size(r.kind))
    return corrupt("value area of " + std::to_string(r.value_size) + " bytes is too small for kind " + std::to_string(kind), offset);
  if (name_len == 0) return corrupt("record with an empty name", offset);
  r.name.assign(reinterpret_cast<const char*>(p + kRecordHeadSize), name_len);
  return parse_tags(p + kRecordHeadSize + name_len, tags_len, offset + kRecordHeadSize + name_len, r.tags);
}

Status decode_histogram(const uint8_t* v, uint32_t size, uint64_t offset, StatherdV2Value& out) {
  out.count = load_f64(v);
  out.sum = load_f64(v + 8);
  out.min = load_f64(v + 16);
  out.max = load_f64(v + 24);
  out.zero_count = load_f64(v + 32);
  out.bucket_offset = static_cast<int32_t>(load_u32(v + 40));
  const uint32_t n = load_u32(v + 44);
  if (n > kStatherdV2MaxBuckets || kHistogramHeadSize + uint64_t{n} * 8 > size)
    return corrupt("histogram with " + std::to_string(n) + " buckets does not fit its record", offset);
  if (int64_t{out.bucket_offset} + n > int64_t{std::numeric_limits<int32_t>::max()})
    return corrupt("histogram bucket range past the largest bucket index", offset);
  out.counts.resize(n);
  for (uint32_t k = 0; k < n; ++k) out.counts[k] = load_f64(v + kHistogramHeadSize + 8 * k);
  return Ok{};
}

Status decode_value(const StatherdV2Record& r, const uint8_t* v, StatherdV2Value& out) {
  switch (r.kind) {
    case StatherdV2Kind::Counter:
    case StatherdV2Kind::Gauge: out.number = load_f64(v); return Ok{};
    case StatherdV2Kind::Text: {
      const uint32_t capacity = load_u32(v), length = load_u32(v + 4);
      if (length > capacity || kTextHeadSize + uint64_t{capacity} > r.value_size)
        return corrupt("text length " + std::to_string(length) + "/capacity " + std::to_string(capacity) + " does not fit its record", r.offset);
      out.text.assign(reinterpret_cast<const char*>(v + kTextHeadSize), length);
      return Ok{};
    }
    case StatherdV2Kind::Histogram: return decode_histogram(v, r.value_size, r.offset, out);
  }
  return corrupt("unknown kind", r.offset);
}

}  // namespace

Result<StatherdV2Header> parse_statherd_v2_header(std::span<const uint8_t> bytes) {
  if (bytes.size() < kStatherdV2HeaderSize)
    return make_error("statherd v2: file of " + std::to_string(bytes.size()) + " bytes is shorter than the 256-byte header",
                      "the writer may be starting; it is read again next scrape");
  const uint8_t* p = bytes.data();
  if (std::memcmp(p, kMagic, sizeof kMagic) != 0)
    return make_error("statherd v2: bad magic (not \"STHRDv2\\0\")", "only files written by clients/python/statherd belong in the --v2-glob");
  StatherdV2Header h;
  h.version = load_u32(p + 8);
  if (h.version != kStatherdV2Version)
    return make_error("statherd v2: format version " + std::to_string(h.version) + " (this agent reads 2)", "upgrade the agent, or the writer");
  const uint32_t header_size = load_u32(p + 12);
  if (header_size != kStatherdV2HeaderSize) return corrupt("header size " + std::to_string(header_size) + " (expected 256)", 12);
  const uint64_t pid = load_u64(p + 16);
  if (pid == 0 || pid > uint64_t{std::numeric_limits<int32_t>::max()}) return corrupt("pid " + std::to_string(pid) + " out of range", 16);
  h.pid = static_cast<int64_t>(pid);
  h.start_time_ms = static_cast<int64_t>(load_u64(p + 24) & (~uint64_t{0} >> 1));
  h.heartbeat_ms = static_cast<int64_t>(load_u64(p + 32) & (~uint64_t{0} >> 1));
  h.used = load_u64(p + 40);
  h.generation = load_u64(p + 48);
  if (h.used < kStatherdV2HeaderSize || h.used % 8 != 0)
    return corrupt("`used` " + std::to_string(h.used) + " is below 256 or not a multiple of 8", 40);
  if (h.used > bytes.size())
    return corrupt("`used` " + std::to_string(h.used) + " runs past the end of the file (" + std::to_string(bytes.size()) + " bytes)", 40);
  const uint16_t app_len = load_u16(p + 56);
  if (app_len > kMaxAppLen) return corrupt("app name length " + std::to_string(app_len) + " (at most 190)", 56);
  h.app.assign(reinterpret_cast<const char*>(p + 58), app_len);
  return h;
}

Status parse_statherd_v2_records(std::span<const uint8_t> bytes, uint64_t from, uint64_t used,
                                 std::vector<StatherdV2Record>& records) {
  if (used > bytes.size()) return corrupt("`used` " + std::to_string(used) + " runs past the end of the file", 40);
  if (from % 8 != 0 || from < kStatherdV2HeaderSize) return corrupt("record start not 8-aligned", from);
  StatherdV2Record r;
  for (uint64_t offset = from; offset < used;) {
    bool known = true;
    if (auto st = parse_record(bytes, offset, used, r, &known); !st) return st;
    offset += r.size;  // > 0: parse_record checked it holds at least a header and a seq
    if (known) records.push_back(r);
  }
  return Ok{};
}

Status read_statherd_v2_value(std::span<const uint8_t> bytes, const StatherdV2Record& r,
                              StatherdV2Value& value) {
  const uint64_t end = r.seq_offset + 8 + uint64_t{r.value_size};
  if (r.seq_offset < kStatherdV2HeaderSize || end > bytes.size()) return corrupt("record past the end of the file", r.offset);
  const uint8_t* seq_at = bytes.data() + r.seq_offset;
  thread_local std::vector<uint8_t> copy;
  copy.resize(r.value_size);
  uint64_t last_seq = 0;
  for (int attempt = 0; attempt < kStatherdV2MaxReadTries; ++attempt) {
    const uint64_t before = load_seq(seq_at);  // acquire: the value bytes are read after it
    if (before % 2 != 0) {                    // the writer is inside its update: retry
      last_seq = before;
      continue;
    }
    std::memcpy(copy.data(), seq_at + 8, r.value_size);
    std::atomic_thread_fence(std::memory_order_acquire);  // the copy completes before the re-read
    const uint64_t after = load_seq(seq_at);
    if (before == after) return decode_value(r, copy.data(), value);
    last_seq = after;
  }
  return make_error("statherd v2: value of \"" + r.name + "\"" + at(r.offset) + " kept changing (seq " +
                        std::to_string(last_seq) + " after " + std::to_string(kStatherdV2MaxReadTries) + " tries)",
                    "skipped for this scrape; a writer that stays odd has crashed mid-update");
}

Status statherd_v2_sample(const StatherdV2Record& r, const StatherdV2Value& v, Sample& s) {
  s.name = r.name;
  s.tags = r.tags;
  s.text.clear();
  s.dist.reset();
  s.value = 0;
  switch (r.kind) {
    case StatherdV2Kind::Counter: s.kind = Kind::Counter; s.value = v.number; return Ok{};
    case StatherdV2Kind::Gauge: s.kind = Kind::Gauge; s.value = v.number; return Ok{};
    case StatherdV2Kind::Text: s.kind = Kind::Text; s.text = v.text; return Ok{};
    case StatherdV2Kind::Histogram: break;
  }
  s.kind = Kind::Distribution;
  // Trim zero buckets; past the sketch's bucket cap the lowest buckets fold into one (as the
  // sketch's own collapse does: only the low end loses accuracy).
  size_t first = 0, last = v.counts.size();
  while (first < last && v.counts[first] == 0) ++first;
  while (last > first && v.counts[last - 1] == 0) --last;
  Sketch::Store pos;
  pos.offset = v.bucket_offset + static_cast<int32_t>(first);
  pos.counts.assign(v.counts.begin() + static_cast<std::ptrdiff_t>(first),
                    v.counts.begin() + static_cast<std::ptrdiff_t>(last));
  const size_t cap = static_cast<size_t>(Sketch::kDefaultMaxBuckets);
  if (pos.counts.size() > cap) {
    const size_t fold = pos.counts.size() - cap;
    double low = 0;
    for (size_t k = 0; k <= fold; ++k) low += pos.counts[k];
    pos.counts.erase(pos.counts.begin(), pos.counts.begin() + static_cast<std::ptrdiff_t>(fold));
    pos.counts[0] = low;
    pos.offset += static_cast<int32_t>(fold);
  }
  auto d = std::make_shared<Distribution>();
  d->form = Distribution::Form::Sketch;
  if (!d->sketch.assign(Sketch::kDefaultAlpha, std::move(pos), Sketch::Store{}, v.zero_count, v.count,
                        v.sum, v.min, v.max))
    return make_error("statherd v2: histogram \"" + r.name + "\"" + at(r.offset) +
                          " is inconsistent (count " + std::to_string(v.count) +
                          " != zero_count + bucket counts, a non-finite value, min > max, or buckets out of range)",
                      "skipped; the writer must update count, buckets, min and max under one seq");
  s.dist = std::move(d);
  return Ok{};
}

Result<StatherdV2File> parse_statherd_v2(std::span<const uint8_t> bytes) {
  auto header = parse_statherd_v2_header(bytes);
  if (!header) return header.error();
  StatherdV2File file;
  file.header = std::move(*header);
  if (auto st = parse_statherd_v2_records(bytes, kStatherdV2HeaderSize, file.header.used, file.records); !st)
    return st.error();
  file.values.resize(file.records.size());
  for (size_t i = 0; i < file.records.size(); ++i)
    if (auto st = read_statherd_v2_value(bytes, file.records[i], file.values[i]); !st) return st.error();
  return file;
}

}  // namespace statherd::agent
