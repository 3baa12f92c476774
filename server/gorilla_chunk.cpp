#include "server/gorilla_chunk.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace statherd::server {

namespace {

// Growth step of an open chunk's buffer: small, so a series seen a few times costs a few
// bytes, not a doubling's slack (a 256-point chunk reallocates ~20 times in its life).
constexpr size_t kGrowBytes = 16;

uint64_t bits_of(double v) { return std::bit_cast<uint64_t>(v); }
double double_of(uint64_t b) { return std::bit_cast<double>(b); }

// Appends the low `n` bits of `value` (n <= 64), most significant first.
void put_bits(GorillaChunk& c, uint64_t value, int n) {
  while (n > 0) {
    const uint32_t used = c.bits & 7;
    if (used == 0) {
      if (c.bytes.size() == c.bytes.capacity()) c.bytes.reserve(c.bytes.size() + kGrowBytes);
      c.bytes.push_back(0);
    }
    const int room = 8 - static_cast<int>(used);
    const int take = std::min(room, n);
    const uint64_t part = (value >> (n - take)) & ((uint64_t{1} << take) - 1);
    c.bytes.back() = static_cast<uint8_t>(c.bytes.back() | (part << (room - take)));
    n -= take;
    c.bits += static_cast<uint32_t>(take);
  }
}

void put_dod(GorillaChunk& c, int64_t dod) {
  if (dod == 0) return put_bits(c, 0, 1);
  if (dod >= -63 && dod <= 64) return put_bits(c, (0b10u << 7) | static_cast<uint64_t>(dod + 63), 9);
  if (dod >= -255 && dod <= 256)
    return put_bits(c, (uint64_t{0b110} << 9) | static_cast<uint64_t>(dod + 255), 12);
  if (dod >= -2047 && dod <= 2048)
    return put_bits(c, (uint64_t{0b1110} << 12) | static_cast<uint64_t>(dod + 2047), 16);
  put_bits(c, 0b1111, 4);
  put_bits(c, static_cast<uint64_t>(dod), 64);
}

}  // namespace

void GorillaAppender::append(GorillaChunk& c, int64_t ts, double value) {
  const uint64_t vbits = bits_of(value);
  if (c.count == 0) {
    c.first_ts = c.last_ts = ts;
    c.count = 1;
    put_bits(c, vbits, 64);
    prev_delta = 0;
    prev_bits = vbits;
    leading = 0xff;
    return;
  }
  const int64_t delta = ts - c.last_ts;
  put_dod(c, delta - prev_delta);
  prev_delta = delta;
  c.last_ts = ts;
  ++c.count;

  const uint64_t x = vbits ^ prev_bits;
  prev_bits = vbits;
  if (x == 0) return put_bits(c, 0, 1);
  const int lead = std::min(31, std::countl_zero(x));
  const int trail = std::countr_zero(x);
  if (leading != 0xff && lead >= leading && trail >= trailing) {
    put_bits(c, 0b10, 2);
    put_bits(c, x >> trailing, 64 - leading - trailing);
    return;
  }
  const int meaningful = 64 - lead - trail;
  put_bits(c, 0b11, 2);
  put_bits(c, static_cast<uint64_t>(lead), 5);
  put_bits(c, static_cast<uint64_t>(meaningful - 1), 6);
  put_bits(c, x >> trail, meaningful);
  leading = static_cast<uint8_t>(lead);
  trailing = static_cast<uint8_t>(trail);
}

GorillaAppender encode_chunk(GorillaChunk& chunk, const std::vector<TimedValue>& points) {
  chunk.bytes.clear();
  chunk.bits = chunk.count = 0;
  chunk.first_ts = chunk.last_ts = 0;
  GorillaAppender appender;
  for (const TimedValue& p : points) appender.append(chunk, p.ts, p.value);
  return appender;
}

uint64_t GorillaReader::bits(int n) {
  uint64_t out = 0;
  while (n > 0) {
    const uint32_t byte = pos_ >> 3, used = pos_ & 7;
    const int room = 8 - static_cast<int>(used);
    const int take = std::min(room, n);
    // Past the end (a damaged chunk, which the writer never makes) reads zero bits.
    const uint8_t b = byte < chunk_.bytes.size() ? chunk_.bytes[byte] : 0;
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
