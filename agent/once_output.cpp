#include "agent/once_output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

namespace statherd::agent {
namespace {

// Bytes that cannot be copied as they are: control bytes, '"', '\\', and every non-ASCII byte
// (those are checked for valid UTF-8 one sequence at a time).
constexpr std::array<bool, 256> make_special_table() {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
  return t;
}
constexpr std::array<bool, 256> kSpecial = make_special_table();

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the valid UTF-8 sequence starting at s[i] (a byte >= 0x80), or 0 if invalid.
size_t valid_utf8_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  size_t left = s.size() - i;
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && is_continuation(b(1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || !is_continuation(b(1)) || !is_continuation(b(2))) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || !is_continuation(b(1)) || !is_continuation(b(2)) || !is_continuation(b(3)))
      return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

void append_u00xx(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
  out.append(buf, 6);
}

void append_escaped_byte(std::string& out, unsigned char c) {
  switch (c) {
    case '"': out.append("\\\""); return;
    case '\\': out.append("\\\\"); return;
    case '\n': out.append("\\n"); return;
    case '\t': out.append("\\t"); return;
    case '\r': out.append("\\r"); return;
    case '\b': out.append("\\b"); return;
    case '\f': out.append("\\f"); return;
    default: append_u00xx(out, c);
  }
}

void append_sketch(std::string& out, const Sketch& s) {
  out.append("{\"count\":");
  append_json_number(out, s.count());
  out.append(",\"sum\":");
  append_json_number(out, s.sum());
  out.append(",\"min\":");
  append_json_number(out, s.empty() ? NAN : s.min());
  out.append(",\"max\":");
  append_json_number(out, s.empty() ? NAN : s.max());
  static constexpr std::pair<const char*, double> kQuantiles[] = {
      {",\"p50\":", 0.5}, {",\"p90\":", 0.9}, {",\"p99\":", 0.99}};
  for (const auto& [key, q] : kQuantiles) {
    out.append(key);
    append_json_number(out, s.quantile(q));
  }
  out.push_back('}');
}

void append_distribution(std::string& out, const Distribution* d) {
  if (!d) {
    out.append("null");
    return;
  }
  if (d->form == Distribution::Form::Sketch) return append_sketch(out, d->sketch);
  out.append("{\"count\":");
  append_json_number(out, d->count);
  out.append(",\"sum\":");
  if (d->sum_unknown) out.append("null");  // not known (a Scales PMF, a NaN _sum)
  else append_json_number(out, d->sum);
  if (d->form == Distribution::Form::Buckets) {
    out.append(",\"buckets\":[");
    for (size_t i = 0; i < d->bucket_upper_bounds.size(); ++i) {
      if (i) out.push_back(',');
      out.push_back('[');
      double le = d->bucket_upper_bounds[i];
      if (std::isinf(le) && le > 0) out.append("\"+Inf\"");
      else append_json_number(out, le);
      out.push_back(',');
      append_json_number(out, i < d->bucket_counts.size() ? d->bucket_counts[i] : 0);
      out.push_back(']');
    }
    out.append("]}");
    return;
  }
  out.append(",\"min\":");
  append_json_number(out, d->min);
  out.append(",\"max\":");
  append_json_number(out, d->max);
  out.append(",\"quantiles\":{");
  for (size_t i = 0; i < d->quantiles.size(); ++i) {
    if (i) out.push_back(',');
    char key[64];
    auto r = std::to_chars(key, key + sizeof key, d->quantiles[i].first);
    append_json_string(out, std::string_view(key, static_cast<size_t>(r.ptr - key)));
    out.push_back(':');
    append_json_number(out, d->quantiles[i].second);
  }
  out.append("}}");
}

void append_value(std::string& out, const Sample& s) {
  switch (s.kind) {
    case Kind::Counter:
    case Kind::Gauge: append_json_number(out, s.value); return;
    case Kind::Text: append_json_string(out, s.text); return;
    case Kind::Distribution: append_distribution(out, s.dist.get()); return;
  }
  out.append("null");
}

std::string_view kind_and_value_key(Kind k) {
  switch (k) {
    case Kind::Counter: return ",\"kind\":\"counter\",\"value\":";
    case Kind::Gauge: return ",\"kind\":\"gauge\",\"value\":";
    // A distribution is what one read sees: every observation since the process started (the
    // server rolls up the difference between reads). "cumulative":true says so.
    case Kind::Distribution: return ",\"kind\":\"distribution\",\"cumulative\":true,\"value\":";
    case Kind::Text: return ",\"kind\":\"text\",\"value\":";
  }
  return ",\"kind\":\"gauge\",\"value\":";
}

// Writes the number as append_json_number does into buf (at least 32 bytes); returns its end.
char* write_json_number(char* buf, double v) {
  if (!std::isfinite(v)) {
    std::memcpy(buf, "null", 4);
    return buf + 4;
  }
  constexpr double kTwoTo53 = 9007199254740992.0;
  if (std::fabs(v) < kTwoTo53 && v == std::trunc(v))
    return std::to_chars(buf, buf + 32, static_cast<int64_t>(v)).ptr;
  return std::to_chars(buf, buf + 32, v).ptr;
}

constexpr std::string_view kEmptyTagsAndEnd = ",\"tags\":{}}\n";

std::string once_line_prefix(const SourceIdentity& id) {
  std::string prefix = "{\"source\":";
  append_json_string(prefix, id.path);
  prefix.append(",\"app\":");
  append_json_string(prefix, id.app);
  prefix.append(",\"pid\":");
  if (id.pid >= 0) prefix.append(std::to_string(id.pid));
  else prefix.append("null");
  prefix.append(",\"name\":");
  return prefix;
}

void append_once_line(std::string& out, std::string_view prefix, const Sample& s) {
  out.append(prefix);
  append_json_string(out, s.name);
  out.append(kind_and_value_key(s.kind));
  append_value(out, s);
  if (s.tags.empty()) {
    out.append(kEmptyTagsAndEnd);
    return;
  }
  out.append(",\"tags\":{");
  for (size_t i = 0; i < s.tags.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(out, s.tags[i].first);
    out.push_back(':');
    append_json_string(out, s.tags[i].second);
  }
  out.append("}}\n");
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  size_t run_start = 0, i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (!kSpecial[c]) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (size_t n = valid_utf8_length(s, i); n > 0) {
        i += n;  // valid UTF-8 stays in the run
        continue;
      }
    }
    out.append(s.data() + run_start, i - run_start);
    append_escaped_byte(out, c);
    run_start = ++i;
  }
  out.append(s.data() + run_start, s.size() - run_start);
  out.push_back('"');
}

void append_json_number(std::string& out, double v) {
  char buf[32];
  out.append(buf, static_cast<size_t>(write_json_number(buf, v) - buf));
}

void append_once_lines(std::string& out, const SourceSamples& source) {
  const std::string prefix = once_line_prefix(source.id);
  // Grow geometrically: an exact reserve per source would copy the whole buffer every time.
  const size_t needed = out.size() + source.samples.size() * (prefix.size() + 80);
  if (needed > out.capacity()) out.reserve(std::max(needed, out.capacity() * 2));
  for (const Sample& s : source.samples) append_once_line(out, prefix, s);
}

Status write_fully(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(std::string("cannot write output: ") + std::strerror(errno),
                        "the reader of the output went away, or its disk is full");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Ok{};
}

OnceLineWriter::OnceLineWriter(int fd, size_t chunk_bytes)
    : fd_(fd),
      chunk_bytes_(chunk_bytes),
      buffer_(std::make_unique_for_overwrite<char[]>(chunk_bytes + kLineRoom)),
      size_(chunk_bytes + kLineRoom) {
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) &&
      ::fcntl(fd, F_GETPIPE_SZ) < static_cast<int>(chunk_bytes))
    (void)::fcntl(fd, F_SETPIPE_SZ, static_cast<int>(chunk_bytes));  // capped by pipe-max-size
}

// `"name","kind":"...","value":` of sample i, escaped once and kept while files repeat it.
std::string_view OnceLineWriter::head_of(size_t i, const Sample& s) {
  if (i >= heads_.size()) heads_.resize(i + 1);
  FieldHead& h = heads_[i];
  if (h.kind != s.kind || h.name != s.name || h.text.empty()) {
    h.name = s.name;
    h.kind = s.kind;
    h.text.clear();
    append_json_string(h.text, s.name);
    h.text.append(kind_and_value_key(s.kind));
  }
  return h.text;
}

Status OnceLineWriter::put(std::string_view bytes) {
  if (used_ + bytes.size() > size_) {
    if (auto st = flush(); !st) return st;
    if (bytes.size() > size_) return write_fully(fd_, bytes);
  }
  std::memcpy(buffer_.get() + used_, bytes.data(), bytes.size());
  used_ += bytes.size();
  return Ok{};
}

// Numbers without tags (nearly every mmstats line) are composed straight into the buffer from
// the prefix, the cached head and the number; everything else goes through append_once_line.
Status OnceLineWriter::add(const SourceSamples& source) {
  prefix_ = once_line_prefix(source.id);
  for (size_t i = 0; i < source.samples.size(); ++i) {
    const Sample& s = source.samples[i];
    if ((s.kind != Kind::Counter && s.kind != Kind::Gauge) || !s.tags.empty()) {
      line_.clear();
      append_once_line(line_, prefix_, s);
      if (auto st = put(line_); !st) return st;
      continue;
    }
    const std::string_view head = head_of(i, s);
    const size_t most = prefix_.size() + head.size() + 32 + kEmptyTagsAndEnd.size();
    if (used_ + most > size_) {
      if (auto st = flush(); !st) return st;
      if (most > size_) {  // a name longer than the room left past a chunk: grow
        buffer_ = std::make_unique_for_overwrite<char[]>(most);
        size_ = most;
      }
    }
    char* p = buffer_.get() + used_;
    p = std::copy(prefix_.begin(), prefix_.end(), p);
    p = std::copy(head.begin(), head.end(), p);
    p = write_json_number(p, s.value);
    p = std::copy(kEmptyTagsAndEnd.begin(), kEmptyTagsAndEnd.end(), p);
    used_ = static_cast<size_t>(p - buffer_.get());
  }
  return used_ >= chunk_bytes_ ? flush() : Status(Ok{});
}

Status OnceLineWriter::flush() {
  Status st = write_fully(fd_, std::string_view(buffer_.get(), used_));
  used_ = 0;
  return st;
}

Status OnceLineWriter::finish() { return flush(); }

}  // namespace statherd::agent
