// Agent batch codec. Layout (all integers little-endian; "varint" is unsigned LEB128, "zz" is a
// zigzag-encoded signed LEB128, "str" is varint length + bytes, "f64" is IEEE-754 binary64):
//
//   magic "SHB" u8 version(=1)
//   str agent_id | varint seq | zz sent_ms
//   varint n_sources, then per source:
//     str host | str app | zz pid | zz start_time_ms | str path | u8 flags (bit 0: fresh,
//     bit 1: start_time_ms is the file's birth time)
//     varint n_samples, then per sample:
//       str name | varint n_tags, n x (str key, str value) | u8 kind | zz timestamp_ms
//       counter/gauge (kinds 1, 2): f64 value        text (4): str text
//       counter with previous (kind 5): f64 value, f64 previous (finite, >= 0)
//       distribution: u8 form (bit 7: sum unknown, Buckets/Summary only; sum written 0), then
//         sketch:  f64 alpha, f64 zero, f64 count, f64 sum, f64 min, f64 max,
//                  store positive, store negative   (store = zz offset, varint n, n x f64)
//         buckets: varint n, n x (f64 upper_bound, f64 count), f64 count, f64 sum
//         summary: f64 count, f64 sum, f64 min, f64 max, varint n, n x (f64 q, f64 value)
//   varint n_errors, n x (str source, str message)
//
// The decoder checks every length against the bytes left and against WireLimits before it
// allocates, so a hostile length can neither read past the span nor exhaust memory.
#include "common/wire.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace statherd {
namespace {

constexpr uint8_t kVersion = 1;
// The smallest encodings, used to refuse counts the payload cannot hold before allocating.
// An empty source: host, app, pid, start time, path, flags, sample count = 7 bytes.
constexpr size_t kMinSourceBytes = 7;
constexpr size_t kMinSampleBytes = 6;
// Bit 7 of a distribution's form byte: its sum is not known (Distribution::sum_unknown).
constexpr uint8_t kSumUnknownBit = 0x80;
// Sample kind 5: a counter with the cumulative value the agent read the scrape before
// (Sample::previous). Decoders before it refuse it as an unknown kind.
constexpr uint8_t kCounterWithPrevious = 5;

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void varint(uint64_t v) {
    char buf[10];
    int n = 0;
    while (v >= 0x80) {
      buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    buf[n++] = static_cast<char>(v);
    out_.append(buf, n);
  }
  void zz(int64_t v) {
    varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void f64(double v) {
    char buf[8];
    std::memcpy(buf, &v, 8);  // x86-64 and aarch64 are little-endian; checked in wire_test
    out_.append(buf, 8);
  }
  void str(std::string_view s) {
    varint(s.size());
    out_.append(s);
  }
  void raw(std::string_view bytes) { out_.append(bytes); }

 private:
  std::string& out_;
};

void write_store(Writer& w, const Sketch::Store& s) {
  w.zz(s.offset);
  w.varint(s.counts.size());
  for (double c : s.counts) w.f64(c);
}

void write_distribution(Writer& w, const Distribution& d) {
  const bool unknown = d.sum_unknown && d.form != Distribution::Form::Sketch;
  w.u8(static_cast<uint8_t>(static_cast<uint8_t>(d.form) | (unknown ? kSumUnknownBit : 0)));
  switch (d.form) {
    case Distribution::Form::Sketch: {
      const Sketch& s = d.sketch;
      w.f64(s.alpha());
      w.f64(s.zero_count());
      w.f64(s.count());
      w.f64(s.sum());
      w.f64(s.min());
      w.f64(s.max());
      write_store(w, s.positive());
      write_store(w, s.negative());
      break;
    }
    case Distribution::Form::Buckets:
      w.varint(d.bucket_upper_bounds.size());
      for (size_t i = 0; i < d.bucket_upper_bounds.size(); ++i) {
        w.f64(d.bucket_upper_bounds[i]);
        w.f64(i < d.bucket_counts.size() ? d.bucket_counts[i] : 0.0);
      }
      w.f64(d.count);
      w.f64(unknown ? 0.0 : d.sum);
      break;
    case Distribution::Form::Summary:
      w.f64(d.count);
      w.f64(unknown ? 0.0 : d.sum);
      w.f64(d.min);
      w.f64(d.max);
      w.varint(d.quantiles.size());
      for (const auto& [q, v] : d.quantiles) {
        w.f64(q);
        w.f64(v);
      }
      break;
  }
}

void write_sample(Writer& w, const Sample& s) {
  w.str(s.name);
  w.varint(s.tags.size());
  for (const auto& [k, v] : s.tags) {
    w.str(k);
    w.str(v);
  }
  const bool with_previous = s.kind == Kind::Counter && s.has_previous() &&
                             std::isfinite(s.previous);  // what the decoder takes
  w.u8(with_previous ? kCounterWithPrevious : static_cast<uint8_t>(s.kind));
  w.zz(s.timestamp_ms);
  switch (s.kind) {
    case Kind::Counter:
      w.f64(s.value);
      if (with_previous) w.f64(s.previous);
      break;
    case Kind::Gauge: w.f64(s.value); break;
    case Kind::Text: w.str(s.text); break;
    case Kind::Distribution:
      if (s.dist) {
        write_distribution(w, *s.dist);
      } else {
        write_distribution(w, Distribution{});
      }
      break;
  }
}

// Bounded reader over the payload. Every read checks what is left; the first failure sticks
// and carries the offset where it happened.
class Reader {
 public:
  Reader(std::span<const uint8_t> b, const WireLimits& l) : b_(b), limits_(l) {}

  bool failed() const { return !err_.empty(); }
  const std::string& error() const { return err_; }
  size_t offset() const { return pos_; }
  size_t left() const { return b_.size() - pos_; }

  void fail(std::string what) {
    if (err_.empty()) err_ = std::move(what) + " at byte " + std::to_string(pos_);
  }
  // Prefixes the sticky error with what was being read ("sample 'x'").
  void fail_context(const std::string& what) {
    if (!err_.empty() && err_.rfind(what, 0) != 0) err_ = what + ": " + err_;
  }

  uint8_t u8() {
    if (left() < 1) return fail("truncated (expected 1 byte)"), 0;
    return b_[pos_++];
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (left() < 1) return fail("truncated varint"), 0;
      uint8_t byte = b_[pos_++];
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return v;
    }
    return fail("varint longer than 10 bytes"), 0;
  }
  int64_t zz() {
    uint64_t u = varint();
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  double f64() {
    if (left() < 8) return fail("truncated (expected 8-byte float)"), 0.0;
    double v;
    std::memcpy(&v, b_.data() + pos_, 8);
    pos_ += 8;
    return v;
  }
  // A count of items each at least min_item_bytes long, capped by `cap`. `splittable`: the cap
  // is a per-batch limit that smaller batches would meet (sources, samples), so exceeding it
  // (with a count the payload can hold) makes the batch too large, not malformed.
  uint64_t count(uint64_t cap, size_t min_item_bytes, const char* what, bool splittable = false) {
    uint64_t n = varint();
    if (failed()) return 0;
    if (min_item_bytes && n > left() / min_item_bytes)
      return fail(std::string(what) + " count " + std::to_string(n) + " exceeds payload"), 0;
    if (n > cap) {
      over_limit_ = splittable;
      return fail(std::string(what) + " count " + std::to_string(n) + " over limit " +
                  std::to_string(cap)), 0;
    }
    return n;
  }
  bool over_limit() const { return over_limit_; }
  void str(std::string& out) {
    uint64_t n = varint();
    if (failed()) return;
    if (n > limits_.max_string) return fail("string of " + std::to_string(n) + " bytes over limit");
    if (n > left()) return fail("string of " + std::to_string(n) + " bytes past end of payload");
    out.assign(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
  }

  const WireLimits& limits() const { return limits_; }

 private:
  std::span<const uint8_t> b_;
  const WireLimits& limits_;
  size_t pos_ = 0;
  std::string err_;
  bool over_limit_ = false;
};

bool finite_nonneg(double v) { return std::isfinite(v) && v >= 0; }

void read_store(Reader& r, Sketch::Store& s) {
  int64_t off = r.zz();
  if (off < -(1 << 30) || off > (1 << 30)) return r.fail("sketch bucket offset out of range");
  s.offset = static_cast<int32_t>(off);
  uint64_t n = r.count(r.limits().max_buckets, 8, "sketch bucket");
  s.counts.resize(n);
  for (auto& c : s.counts) c = r.f64();
}

void read_sketch(Reader& r, Distribution& d) {
  double alpha = r.f64(), zero = r.f64(), count = r.f64(), sum = r.f64();
  double mn = r.f64(), mx = r.f64();
  Sketch::Store pos, neg;
  read_store(r, pos);
  read_store(r, neg);
  if (r.failed()) return;
  if (!(alpha > 0 && alpha < 1)) return r.fail("sketch alpha not in (0,1)");
  d.sketch = Sketch(alpha);
  if (!d.sketch.assign(alpha, std::move(pos), std::move(neg), zero, count, sum, mn, mx))
    r.fail("inconsistent sketch (counts, min/max or bucket range)");
}

void read_buckets(Reader& r, Distribution& d) {
  uint64_t n = r.count(r.limits().max_buckets, 16, "histogram bucket");
  d.bucket_upper_bounds.resize(n);
  d.bucket_counts.resize(n);
  for (uint64_t i = 0; i < n; ++i) {
    d.bucket_upper_bounds[i] = r.f64();
    d.bucket_counts[i] = r.f64();
    if (r.failed()) return;
    if (std::isnan(d.bucket_upper_bounds[i]) || (i && d.bucket_upper_bounds[i] <= d.bucket_upper_bounds[i - 1]))
      return r.fail("histogram bucket bounds not strictly ascending");
    if (!finite_nonneg(d.bucket_counts[i])) return r.fail("histogram bucket count not finite >= 0");
  }
  d.count = r.f64();
  d.sum = r.f64();
  if (!r.failed() && !finite_nonneg(d.count)) r.fail("histogram count not finite >= 0");
  if (!r.failed() && d.sum_unknown) d.sum = 0;  // the value is meaningless
  if (!r.failed() && !std::isfinite(d.sum)) r.fail("histogram sum not finite");
}

void read_summary(Reader& r, Distribution& d) {
  d.count = r.f64();
  d.sum = r.f64();
  if (!r.failed() && d.sum_unknown) d.sum = 0;  // the value is meaningless; 0 passes below
  d.min = r.f64();
  d.max = r.f64();
  uint64_t n = r.count(r.limits().max_buckets, 16, "summary quantile");
  d.quantiles.resize(n);
  for (auto& [q, v] : d.quantiles) {
    q = r.f64();
    v = r.f64();
    if (!r.failed() && !(q >= 0 && q <= 1)) return r.fail("summary quantile not in [0,1]");
    if (!r.failed() && !std::isfinite(v)) return r.fail("summary quantile value not finite");
  }
  if (!r.failed() && !finite_nonneg(d.count)) r.fail("summary count not finite >= 0");
  // min and max may be NaN ("not known", Scales PMFs without them), never infinite.
  if (!r.failed() && (!std::isfinite(d.sum) || std::isinf(d.min) || std::isinf(d.max)))
    r.fail("summary sum not finite or min/max infinite");
}

void read_distribution(Reader& r, Sample& s) {
  auto d = std::make_shared<Distribution>();
  uint8_t form = r.u8();
  d->sum_unknown = (form & kSumUnknownBit) != 0;
  if (d->sum_unknown && form == (kSumUnknownBit | static_cast<uint8_t>(Distribution::Form::Sketch)))
    return r.fail("sum-unknown flag on a sketch (its sum is always known)");
  if (d->sum_unknown) form &= static_cast<uint8_t>(~kSumUnknownBit);
  switch (form) {
    case static_cast<uint8_t>(Distribution::Form::Sketch):
      d->form = Distribution::Form::Sketch;
      read_sketch(r, *d);
      break;
    case static_cast<uint8_t>(Distribution::Form::Buckets):
      d->form = Distribution::Form::Buckets;
      read_buckets(r, *d);
      break;
    case static_cast<uint8_t>(Distribution::Form::Summary):
      d->form = Distribution::Form::Summary;
      read_summary(r, *d);
      break;
    default:
      if (!r.failed()) r.fail("unknown distribution form " + std::to_string(form));
      return;
  }
  s.dist = std::move(d);
}

void read_sample(Reader& r, Sample& s) {
  r.str(s.name);
  if (!r.failed() && s.name.empty()) return r.fail("empty metric name");
  uint64_t nt = r.count(r.limits().max_tags, 2, "tag");
  s.tags.resize(nt);
  for (auto& [k, v] : s.tags) {
    r.str(k);
    r.str(v);
  }
  uint8_t kind = r.u8();
  s.timestamp_ms = r.zz();
  if (r.failed()) return;
  s.previous = Sample::kNoPrevious;
  switch (kind) {
    case static_cast<uint8_t>(Kind::Counter):
    case static_cast<uint8_t>(Kind::Gauge):
      s.kind = static_cast<Kind>(kind);
      s.value = r.f64();
      if (!r.failed() && !std::isfinite(s.value))
        r.fail("sample '" + s.name + "': non-finite value (NaN or Inf)");
      break;
    case kCounterWithPrevious:
      s.kind = Kind::Counter;
      s.value = r.f64();
      s.previous = r.f64();
      if (!r.failed() && !std::isfinite(s.value))
        r.fail("sample '" + s.name + "': non-finite value (NaN or Inf)");
      else if (!r.failed() && !(std::isfinite(s.previous) && s.previous >= 0))
        r.fail("sample '" + s.name + "': previous value not a finite number >= 0");
      break;
    case static_cast<uint8_t>(Kind::Text):
      s.kind = Kind::Text;
      r.str(s.text);
      break;
    case static_cast<uint8_t>(Kind::Distribution):
      s.kind = Kind::Distribution;
      read_distribution(r, s);
      if (r.failed()) r.fail_context("sample '" + s.name + "'");
      break;
    default: r.fail("unknown sample kind " + std::to_string(kind));
  }
}

// read_sample() into a Sample reused sample after sample: what one kind sets, another leaves.
void read_sample_again(Reader& r, Sample& s) {
  s.text.clear();
  s.dist.reset();
  s.value = 0;
  read_sample(r, s);
}

// `scratch`: read the samples into it, one after the other (validated), and keep them encoded
// in src.encoded, which views `payload` (the bytes r reads, at r's offset 0).
void read_source(Reader& r, SourceSamples& src, uint64_t& samples_left, Sample* scratch,
                 const char* payload) {
  r.str(src.id.host);
  r.str(src.id.app);
  src.id.pid = r.zz();
  src.id.start_time_ms = r.zz();
  r.str(src.id.path);
  const uint8_t flags = r.u8();
  src.fresh = (flags & 1) != 0;
  src.start_is_file_birth = (flags & 2) != 0;
  // A sample takes at least 6 bytes: a text sample with a 1-byte name and empty text is
  // name (2) + tag count (1) + kind (1) + timestamp (1) + text length (1).
  uint64_t n = r.count(samples_left, kMinSampleBytes, "sample", true);
  samples_left -= n;
  if (scratch) {
    const size_t begin = r.offset();
    for (uint64_t i = 0; i < n && !r.failed(); ++i) read_sample_again(r, *scratch);
    src.encoded = std::string_view(payload + begin, r.offset() - begin);
    src.encoded_count = n;
    return;
  }
  src.samples.resize(n);
  for (auto& s : src.samples) {
    if (r.failed()) return;
    read_sample(r, s);
  }
}

// Limits that refuse nothing: samples validated once are read again under these.
const WireLimits& no_limits() {
  static const WireLimits all{UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX,
                              UINT64_MAX};
  return all;
}

}  // namespace

size_t Batch::sample_count() const {
  size_t n = 0;
  for (const auto& s : sources) n += s.samples.size() + s.encoded_count;
  return n;
}

void for_each_sample(const SourceSamples& src,
                     const std::function<void(size_t, const Sample&)>& fn) {
  for (size_t i = 0; i < src.samples.size(); ++i) fn(i, src.samples[i]);
  if (src.encoded_count == 0) return;
  Reader r(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(src.encoded.data()),
                                    src.encoded.size()),
           no_limits());
  Sample s;
  for (uint64_t i = 0; i < src.encoded_count; ++i) {
    read_sample_again(r, s);
    if (r.failed()) throw std::runtime_error("encoded samples do not read: " + r.error());
    fn(src.samples.size() + i, s);
  }
}

std::string encode_batch(const Batch& batch) {
  std::string out;
  out.reserve(64 + batch.sample_count() * 48);
  Writer w(out);
  out.append("SHB");
  w.u8(kVersion);
  w.str(batch.agent_id);
  w.varint(batch.seq);
  w.zz(batch.sent_ms);
  w.varint(batch.sources.size());
  for (const auto& src : batch.sources) {
    w.str(src.id.host);
    w.str(src.id.app);
    w.zz(src.id.pid);
    w.zz(src.id.start_time_ms);
    w.str(src.id.path);
    w.u8(static_cast<uint8_t>((src.fresh ? 1 : 0) | (src.start_is_file_birth ? 2 : 0)));
    w.varint(src.samples.size() + src.encoded_count);
    for (const auto& s : src.samples) write_sample(w, s);
    w.raw(src.encoded);  // a lazily decoded source's samples, as they came
  }
  w.varint(batch.errors.size());
  for (const auto& e : batch.errors) {
    w.str(e.source);
    w.str(e.message);
  }
  return out;
}

namespace {

// decode_batch, or with `payload` (a copy of `bytes`) decode_batch_lazy.
Result<Batch> decode(std::span<const uint8_t> bytes, const WireLimits& limits, bool* over_limit,
                     std::shared_ptr<const std::string> payload) {
  if (over_limit) *over_limit = false;
  if (bytes.size() < 4 || std::memcmp(bytes.data(), "SHB", 3) != 0)
    return make_error("not a statherd batch (bad magic)",
                      "send application/x-statherd-batch bodies built by statherd-agent");
  if (bytes[3] != kVersion)
    return make_error("unsupported batch version " + std::to_string(bytes[3]),
                      "upgrade the server or downgrade the agent to matching versions");
  Reader r(bytes.subspan(4), limits);
  Batch b;
  r.str(b.agent_id);
  b.seq = r.varint();
  b.sent_ms = r.zz();
  if (!r.failed() && b.agent_id.empty()) r.fail("empty agent id");
  uint64_t nsrc = r.count(limits.max_sources, kMinSourceBytes, "source", true);
  b.sources.resize(nsrc);
  uint64_t samples_left = limits.max_samples;
  Sample scratch;
  for (auto& src : b.sources) {
    if (r.failed()) break;
    read_source(r, src, samples_left, payload ? &scratch : nullptr,
                payload ? payload->data() + 4 : nullptr);
  }
  uint64_t nerr = r.count(limits.max_errors, 2, "error");
  b.errors.resize(nerr);
  for (auto& e : b.errors) {
    r.str(e.source);
    r.str(e.message);
  }
  if (!r.failed() && r.left() != 0) r.fail(std::to_string(r.left()) + " trailing bytes");
  if (r.failed() && r.over_limit()) {
    if (over_limit) *over_limit = true;
    return make_error("batch too large: " + r.error() + " (offsets after the 4-byte header)",
                      "the agent splits it; or raise the server's limits");
  }
  if (r.failed()) return make_error("malformed batch: " + r.error() + " (offsets after the 4-byte header)");
  b.payload = std::move(payload);
  return b;
}

}  // namespace

Result<Batch> decode_batch(std::span<const uint8_t> bytes, const WireLimits& limits,
                           bool* over_limit) {
  return decode(bytes, limits, over_limit, nullptr);
}

Result<Batch> decode_batch_lazy(std::string_view bytes, const WireLimits& limits,
                                bool* over_limit) {
  auto payload = std::make_shared<const std::string>(bytes);
  const std::span<const uint8_t> view(reinterpret_cast<const uint8_t*>(payload->data()),
                                      payload->size());
  return decode(view, limits, over_limit, std::move(payload));
}

}  // namespace statherd
