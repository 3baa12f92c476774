// The mmstats v1 parser: structure (layout), torn-safe value reads, label patterns.
// Byte format: see mmstats_v1.h and docs/FORMAT.md.
#include "agent/sources/mmstats_v1.h"

#include <cstring>

namespace statherd::agent {
namespace {

constexpr uint8_t kVersion1 = 1;
constexpr uint8_t kUnbuffered = 255;
constexpr size_t kMaxTypeLen = 16;
constexpr size_t kMaxReadBytes = 1 << 16;  // longest value we copy (a 64 KiB string)

Error format_error(const std::string& what, size_t offset) {
  return make_error("mmstats v1: " + what + " at offset " + std::to_string(offset),
                    "the file is not an mmstats v1 file, or is being created or truncated; it is "
                    "read again next scrape");
}

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);  // native byte order, unaligned
  return v;
}

// A Python struct code the original writes: its size and kind. Returns 0 size if unknown.
struct TypeInfo {
  uint32_t size = 0;
  char code = 0;
  MmstatsValueKind kind = MmstatsValueKind::Number;
};

TypeInfo parse_type_code(std::string_view type) {
  if (type.size() == 1) {
    switch (type[0]) {
      case 'b': case 'B': return {1, type[0], MmstatsValueKind::Number};
      case '?': return {1, '?', MmstatsValueKind::Bool};
      case 'h': case 'H': return {2, type[0], MmstatsValueKind::Number};
      case 'i': case 'I': case 'f': return {4, type[0], MmstatsValueKind::Number};
      case 'l': case 'L': case 'q': case 'Q': case 'd': return {8, type[0], MmstatsValueKind::Number};
      default: return {};
    }
  }
  if (type.size() < 2 || type.back() != 's') return {};
  uint64_t n = 0;
  for (char c : type.substr(0, type.size() - 1)) {
    if (c < '0' || c > '9') return {};
    n = n * 10 + static_cast<uint64_t>(c - '0');
    if (n > kMaxReadBytes) return {};
  }
  if (n == 0) return {};
  return {static_cast<uint32_t>(n), 's', MmstatsValueKind::Text};
}

// One field starting at `pos`; on success advances pos past it.
Result<MmstatsFieldLayout> parse_field(std::span<const uint8_t> b, size_t& pos, uint16_t label_len) {
  MmstatsFieldLayout f;
  f.start = static_cast<uint32_t>(pos);
  f.label_offset = static_cast<uint32_t>(pos + 2);
  f.label_len = label_len;
  size_t p = pos + 2 + label_len;
  if (p + 2 > b.size()) return format_error("truncated label", pos);
  const size_t type_len = load_u16(&b[p]);
  if (type_len == 0 || type_len > kMaxTypeLen)
    return format_error("implausible type length", p);
  p += 2;
  if (p + type_len + 1 > b.size()) return format_error("truncated type", p);
  const std::string_view type(reinterpret_cast<const char*>(&b[p]), type_len);
  const TypeInfo info = parse_type_code(type);
  if (info.size == 0) return format_error("unsupported type code", p);
  p += type_len;
  f.wb_offset = static_cast<uint32_t>(p);
  const uint8_t wb = b[p];
  if (wb != 0 && wb != 1 && wb != kUnbuffered)
    return format_error("write_buffer byte is not 0, 1 or 255", p);
  f.buffered = wb != kUnbuffered;
  f.value_size = info.size;
  f.code = info.code;
  f.kind = info.kind;
  const size_t values = static_cast<size_t>(info.size) * (f.buffered ? 2 : 1);
  if (p + 1 + values > b.size()) return format_error("truncated value", p + 1);
  pos = p + 1 + values;
  return f;
}

void compiler_barrier() { asm volatile("" ::: "memory"); }

// Copies write_buffer and the readable value into dst (1 + value_size bytes).
void copy_field_once(const uint8_t* base, const MmstatsFieldLayout& f, uint8_t* dst) {
  const uint8_t wb = *reinterpret_cast<const volatile uint8_t*>(base + f.wb_offset);
  compiler_barrier();
  dst[0] = wb;
  const size_t slot = f.buffered ? ((wb & 1u) ^ 1u) : 0;
  std::memcpy(dst + 1, base + f.wb_offset + 1 + slot * f.value_size, f.value_size);
  compiler_barrier();
}

double decode_number(const uint8_t* v, char code) {
  auto load = [v](auto zero) {
    decltype(zero) x;
    std::memcpy(&x, v, sizeof x);
    return static_cast<double>(x);
  };
  switch (code) {
    case 'b': return load(int8_t{});
    case 'B': return load(uint8_t{});
    case '?': return v[0] != 0 ? 1.0 : 0.0;
    case 'h': return load(int16_t{});
    case 'H': return load(uint16_t{});
    case 'i': return load(int32_t{});
    case 'I': return load(uint32_t{});
    case 'l': case 'q': return load(int64_t{});
    case 'L': case 'Q': return load(uint64_t{});
    case 'f': return load(float{});
    case 'd': return load(double{});
    default: return 0;
  }
}

// Length of a valid UTF-8 sequence starting at s[i], or 0 if invalid.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto c = static_cast<uint8_t>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return 0;
  return n;
}

// Appends s to out, dropping bytes that are not valid UTF-8 (Python's decode('utf8', 'ignore')).
void append_utf8_ignoring_errors(std::string_view s, std::string& out) {
  size_t i = 0;
  while (i < s.size() && static_cast<uint8_t>(s[i]) < 0x80) ++i;
  out.append(s.substr(0, i));  // fast path: the ASCII prefix
  while (i < s.size()) {
    const size_t n = utf8_sequence_length(s, i);
    if (n == 0) { ++i; continue; }
    out.append(s.substr(i, n));
    i += n;
  }
}

}  // namespace

Result<MmstatsLayout> parse_mmstats_v1_layout(std::span<const uint8_t> bytes) {
  MmstatsLayout layout;
  if (auto st = parse_mmstats_v1_layout_into(bytes, layout); !st) return st.error();
  return layout;
}

Status parse_mmstats_v1_layout_into(std::span<const uint8_t> bytes, MmstatsLayout& layout) {
  layout.fields.clear();
  layout.skeleton.clear();
  layout.end = 0;
  if (bytes.empty()) return format_error("empty file (0 bytes)", 0);
  if (bytes[0] != kVersion1)
    return format_error("unsupported version byte (want 1)", 0);
  if (bytes.size() > UINT32_MAX) return format_error("file larger than 4 GiB", 0);
  size_t pos = 1;
  while (true) {
    // End of the field list: the end of the file (the original reader stops there too), a
    // lone zero byte before it, or a zero label_len.
    if (pos == bytes.size() || (pos + 1 == bytes.size() && bytes[pos] == 0)) break;
    if (pos + 2 > bytes.size()) return format_error("truncated label length", pos);
    const uint16_t label_len = load_u16(&bytes[pos]);
    if (label_len == 0) break;
    auto field = parse_field(bytes, pos, label_len);
    if (!field) return field.error();
    layout.skeleton.append(reinterpret_cast<const char*>(&bytes[field->start]),
                           field->wb_offset - field->start);
    layout.fields.push_back(*field);
  }
  layout.end = static_cast<uint32_t>(pos);
  return Ok{};
}

bool mmstats_v1_layout_still_valid(std::span<const uint8_t> bytes, const MmstatsLayout& layout) {
  if (bytes.empty() || bytes[0] != kVersion1 || layout.end > bytes.size()) return false;
  // The terminator must still be there (else fields were appended: re-parse).
  const size_t end = layout.end;
  if (end + 1 < bytes.size() && load_u16(&bytes[end]) != 0) return false;
  if (end + 1 == bytes.size() && bytes[end] != 0) return false;
  // Every field's header bytes (label_len, label, type_len, type) must be byte-identical and
  // write_buffer must still say buffered/unbuffered as before.
  size_t k = 0;
  for (const auto& f : layout.fields) {
    const size_t n = f.wb_offset - f.start;
    if (k + n > layout.skeleton.size() ||
        std::memcmp(&bytes[f.start], layout.skeleton.data() + k, n) != 0)
      return false;
    k += n;
    const uint8_t wb = bytes[f.wb_offset];
    if (f.buffered ? wb > 1 : wb != kUnbuffered) return false;
  }
  return true;
}

namespace {

bool value_in_bounds(std::span<const uint8_t> bytes, const MmstatsFieldLayout& f) {
  const size_t need = static_cast<size_t>(f.wb_offset) + 1 +
                      static_cast<size_t>(f.value_size) * (f.buffered ? 2 : 1);
  return need <= bytes.size() && f.value_size <= kMaxReadBytes;
}

// `copied` is write_buffer followed by the readable value (as copy_field_once leaves it).
void decode_value(const uint8_t* copied, const MmstatsFieldLayout& f, double* number,
                  std::string* text) {
  if (f.kind == MmstatsValueKind::Text) {
    if (text) {
      const auto* s = reinterpret_cast<const char*>(copied + 1);
      text->clear();
      append_utf8_ignoring_errors(std::string_view(s, strnlen(s, f.value_size)), *text);
    }
  } else if (number) {
    *number = decode_number(copied + 1, f.code);
  }
}

}  // namespace

Status read_mmstats_v1_value_from_copy(std::span<const uint8_t> bytes,
                                       const MmstatsFieldLayout& f, double* number,
                                       std::string* text) {
  if (!value_in_bounds(bytes, f))
    return format_error("field extends past the end of the file", f.wb_offset);
  const uint8_t wb = bytes[f.wb_offset];
  const size_t slot = f.buffered ? ((wb & 1u) ^ 1u) : 0;
  // decode_value reads the value at its argument + 1.
  decode_value(bytes.data() + f.wb_offset + slot * f.value_size, f, number, text);
  return Ok{};
}

Status read_mmstats_v1_value(std::span<const uint8_t> bytes, const MmstatsFieldLayout& f,
                             double* number, std::string* text) {
  if (!value_in_bounds(bytes, f))
    return format_error("field extends past the end of the file", f.wb_offset);
  uint8_t small_a[16], small_b[16];
  std::string big_a, big_b;
  uint8_t* a = small_a;
  uint8_t* b = small_b;
  if (f.value_size + 1 > sizeof small_a) {
    big_a.resize(f.value_size + 1);
    big_b.resize(f.value_size + 1);
    a = reinterpret_cast<uint8_t*>(big_a.data());
    b = reinterpret_cast<uint8_t*>(big_b.data());
  }
  copy_field_once(bytes.data(), f, a);
  for (int attempt = 1; attempt < kMmstatsMaxReadTries; ++attempt) {
    copy_field_once(bytes.data(), f, b);
    if (std::memcmp(a, b, f.value_size + 1) == 0) {
      decode_value(a, f, number, text);
      return Ok{};
    }
    std::swap(a, b);
  }
  return format_error("value kept changing over " + std::to_string(kMmstatsMaxReadTries) +
                          " reads (torn write)", f.wb_offset);
}

std::string mmstats_v1_label(std::span<const uint8_t> bytes, const MmstatsFieldLayout& f) {
  std::string out;
  append_mmstats_v1_label(bytes, f, out);
  return out;
}

void append_mmstats_v1_label(std::span<const uint8_t> bytes, const MmstatsFieldLayout& f,
                             std::string& out) {
  if (static_cast<size_t>(f.label_offset) + f.label_len > bytes.size()) return;
  out.reserve(out.size() + f.label_len);
  append_utf8_ignoring_errors(
      std::string_view(reinterpret_cast<const char*>(&bytes[f.label_offset]), f.label_len), out);
}

Result<std::vector<MmstatsField>> parse_mmstats_v1(std::span<const uint8_t> bytes) {
  auto layout = parse_mmstats_v1_layout(bytes);
  if (!layout) return layout.error();
  std::vector<MmstatsField> out;
  out.reserve(layout->fields.size());
  for (const auto& f : layout->fields) {
    MmstatsField field;
    field.label = mmstats_v1_label(bytes, f);
    const size_t type_pos = f.label_offset + f.label_len + 2u;
    field.type.assign(reinterpret_cast<const char*>(&bytes[type_pos]), f.wb_offset - type_pos);
    field.buffered = f.buffered;
    field.kind = f.kind;
    auto st = read_mmstats_v1_value(bytes, f, &field.number, &field.text);
    if (!st) return st.error();
    out.push_back(std::move(field));
  }
  return out;
}

}  // namespace statherd::agent
