#include "server/gorilla_chunk.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace statherd::server {

namespace {

// Growth of an open chunk's buffer: 16 bytes at a time while it is small, so a series seen a
// few times costs a few bytes, not a doubling's slack; then a quarter of what it holds, so a
// 256-point chunk of noisy doubles (~1.9 KiB) reallocates ~20 times in its life, not ~120
// (each a malloc, a copy and a free: most of the memory store's CPU, issue #10). The slack is
// given back at trim().
constexpr size_t kGrowBytes = 16;
constexpr size_t kGeometricFrom = 64;

// Moves the chunk's bytes into a new buffer of `bytes` (>= size()); capacity follows.
void reallocate(GorillaChunk& c, uint32_t& capacity, size_t bytes) {
  std::unique_ptr<uint8_t[]> grown;
  if (bytes != 0) grown = std::make_unique_for_overwrite<uint8_t[]>(bytes);
  if (c.bits != 0) std::memcpy(grown.get(), c.bytes.get(), c.size());
  c.bytes = std::move(grown);
  capacity = static_cast<uint32_t>(bytes);
}

// Makes room for `n` more bits without another reallocation inside put_bits.
void reserve_bits(GorillaChunk& c, uint32_t& capacity, uint32_t n) {
  const size_t need = (size_t{c.bits} + n + 7) / 8;
  if (need <= capacity) return;
  const size_t step = capacity < kGeometricFrom ? kGrowBytes : capacity / 4;
  reallocate(c, capacity, std::max(need, size_t{capacity} + step));
}

uint64_t bits_of(double v) { return std::bit_cast<uint64_t>(v); }
double double_of(uint64_t b) { return std::bit_cast<double>(b); }

// Appends the low `n` bits of `value` (1 <= n <= 64), most significant first: the rest of the
// last byte, then whole bytes; the room is reserved. `tail` is the chunk's last byte as written
// (when bits % 8 != 0): the buffer is only stored to, never read, so a chunk whose bytes are
// out of cache costs a store, not a load the append waits for.
void put_bits(GorillaChunk& c, uint8_t& tail, uint64_t value, int n) {
  if (n < 64) value &= (uint64_t{1} << n) - 1;
  uint8_t* out = c.bytes.get() + (c.bits >> 3);  // the byte that holds the next bit
  const int used = static_cast<int>(c.bits & 7);
  c.bits += static_cast<uint32_t>(n);
  if (used != 0) {
    const int room = 8 - used;
    if (n <= room) {
      tail = static_cast<uint8_t>(tail | (value << (room - n)));
      *out = tail;
      return;
    }
    n -= room;
    *out++ = static_cast<uint8_t>(tail | (value >> n));
  }
  while (n >= 8) {
    n -= 8;
    *out++ = static_cast<uint8_t>(value >> n);
  }
  tail = static_cast<uint8_t>(value << (8 - n));
  if (n > 0) *out = tail;
}

// The bits put_dod writes for dod.
int dod_bits(int64_t dod) {
  if (dod == 0) return 1;
  if (dod >= -63 && dod <= 64) return 9;
  if (dod >= -255 && dod <= 256) return 12;
  if (dod >= -2047 && dod <= 2048) return 16;
  return 68;
}

void put_dod(GorillaChunk& c, uint8_t& tail, int64_t dod) {
  if (dod == 0) return put_bits(c, tail, 0, 1);
  if (dod >= -63 && dod <= 64)
    return put_bits(c, tail, (0b10u << 7) | static_cast<uint64_t>(dod + 63), 9);
  if (dod >= -255 && dod <= 256)
    return put_bits(c, tail, (uint64_t{0b110} << 9) | static_cast<uint64_t>(dod + 255), 12);
  if (dod >= -2047 && dod <= 2048)
    return put_bits(c, tail, (uint64_t{0b1110} << 12) | static_cast<uint64_t>(dod + 2047), 16);
  put_bits(c, tail, 0b1111, 4);
  put_bits(c, tail, static_cast<uint64_t>(dod), 64);
}

}  // namespace

void GorillaAppender::append(GorillaChunk& c, int64_t ts, double value) {
  const uint64_t vbits = bits_of(value);
  if (c.count == 0) {
    reserve_bits(c, capacity, 64);
    c.first_ts = c.last_ts = ts;
    c.count = 1;
    put_bits(c, tail, vbits, 64);
    prev_delta = 0;
    prev_bits = vbits;
    leading = 0xff;
    return;
  }
  const int64_t delta = ts - c.last_ts;
  const int64_t dod = delta - prev_delta;
  const uint64_t x = vbits ^ prev_bits;
  // The point's bits, reserved at once (exactly: a small chunk grows by no more than before).
  const int lead = x == 0 ? 0 : std::min(31, std::countl_zero(x));
  const int trail = x == 0 ? 0 : std::countr_zero(x);
  const bool in_window = x != 0 && leading != 0xff && lead >= leading && trail >= trailing;
  const int value_bits = x == 0 ? 1 : in_window ? 2 + 64 - leading - trailing
                                                : 2 + 5 + 6 + 64 - lead - trail;
  reserve_bits(c, capacity, static_cast<uint32_t>(dod_bits(dod) + value_bits));
  put_dod(c, tail, dod);
  prev_delta = delta;
  c.last_ts = ts;
  ++c.count;
  prev_bits = vbits;
  if (x == 0) return put_bits(c, tail, 0, 1);
  if (in_window) {
    put_bits(c, tail, 0b10, 2);
    put_bits(c, tail, x >> trailing, 64 - leading - trailing);
    return;
  }
  const int meaningful = 64 - lead - trail;
  put_bits(c, tail, (uint64_t{0b11} << 11) | (static_cast<uint64_t>(lead) << 6) |
                  static_cast<uint64_t>(meaningful - 1), 13);
  put_bits(c, tail, x >> trail, meaningful);
  leading = static_cast<uint8_t>(lead);
  trailing = static_cast<uint8_t>(trail);
}

void GorillaAppender::trim(GorillaChunk& c) {
  if (capacity != c.size()) reallocate(c, capacity, c.size());
}

GorillaAppender encode_chunk(GorillaChunk& chunk, const std::vector<TimedValue>& points,
                             size_t reserve_bytes) {
  // Encoded aside and moved in at the end: a failed allocation leaves chunk as it was.
  GorillaChunk fresh;
  GorillaAppender appender;
  reallocate(fresh, appender.capacity, reserve_bytes);
  for (const TimedValue& p : points) appender.append(fresh, p.ts, p.value);
  chunk = std::move(fresh);
  return appender;
}

uint64_t GorillaReader::bits(int n) {
  uint64_t out = 0;
  while (n > 0) {
    const uint32_t byte = pos_ >> 3, used = pos_ & 7;
    const int room = 8 - static_cast<int>(used);
    const int take = std::min(room, n);
    // Past the end (a damaged chunk, which the writer never makes) reads zero bits.
    const uint8_t b = byte < chunk_.size() ? chunk_.bytes[byte] : 0;
    out = (out << take) | ((b >> (room - take)) & ((1u << take) - 1));
    n -= take;
    pos_ += static_cast<uint32_t>(take);
  }
  return out;
}

bool GorillaReader::next(TimedValue& out) {
  if (read_ >= chunk_.count) return false;
  if (read_++ == 0) {
    ts_ = chunk_.first_ts;
    value_bits_ = bits(64);
    out = {ts_, double_of(value_bits_)};
    return true;
  }
  int64_t dod = 0;
  if (bits(1) != 0) {
    if (bits(1) == 0) dod = static_cast<int64_t>(bits(7)) - 63;
    else if (bits(1) == 0) dod = static_cast<int64_t>(bits(9)) - 255;
    else if (bits(1) == 0) dod = static_cast<int64_t>(bits(12)) - 2047;
    else dod = static_cast<int64_t>(bits(64));
  }
  delta_ += dod;
  ts_ += delta_;
  if (bits(1) != 0) {
    if (bits(1) != 0) {
      leading_ = static_cast<uint8_t>(bits(5));
      const int meaningful = static_cast<int>(bits(6)) + 1;
      trailing_ = static_cast<uint8_t>(64 - leading_ - meaningful);
    }
    const int meaningful = 64 - leading_ - trailing_;
    value_bits_ ^= bits(meaningful) << trailing_;
  }
  out = {ts_, double_of(value_bits_)};
  return true;
}

std::vector<TimedValue> decode_chunk(const GorillaChunk& chunk) {
  std::vector<TimedValue> points;
  points.reserve(chunk.count);
  GorillaReader reader(chunk);
  TimedValue p;
  while (reader.next(p)) points.push_back(p);
  return points;
}

}  // namespace statherd::server
