#include "server/gorilla_chunk.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <utility>

namespace statherd::server {

namespace {

constexpr size_t kHead = GorillaChunk::kHeadBytes;
constexpr size_t kBlock = GorillaChunk::kBlockBytes;
constexpr size_t kBlockData = GorillaChunk::kBlockData;
// The head buffer grows this much at a time (a copy each: it is small).
constexpr size_t kGrowBytes = 16;

uint8_t* untag(uint8_t* p) { return reinterpret_cast<uint8_t*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{1}); }
uint8_t* tag(uint8_t* p) { return reinterpret_cast<uint8_t*>(reinterpret_cast<uintptr_t>(p) | 1); }
bool tagged(const uint8_t* p) { return (reinterpret_cast<uintptr_t>(p) & 1) != 0; }

// A block's link: the block before it, or (tagged) the head buffer.
uint8_t* link_of(const uint8_t* block) {
  uint8_t* link;
  std::memcpy(&link, block, sizeof link);
  return link;
}
uint8_t* block_data(uint8_t* block) { return block + sizeof(uint8_t*); }

// Blocks a chunk of `capacity` bytes holds past its head.
size_t blocks_for(size_t capacity) {
  return capacity <= kHead ? 0 : (capacity - kHead) / kBlockData;
}

// Where the stream's byte `at` of a chunk with `capacity` is, and the end of the buffer or
// block it is in (null: a contiguous buffer, which has room for every byte reserved).
struct Place {
  uint8_t* at;
  uint8_t* end;
};
Place place_of(uint8_t* data, size_t capacity, size_t at) {
  if (!tagged(data)) return {data + at, nullptr};
  // Chained: `at` is in the newest block or at most the one before it, or the head (a point is
  // shorter than a block, and blocks are made only for a point's bytes).
  uint8_t* block = untag(data);
  size_t index = blocks_for(capacity) - 1;  // of `block`
  const size_t want = at < kHead ? SIZE_MAX : (at - kHead) / kBlockData;
  while (index != want) {
    uint8_t* link = link_of(block);
    if (tagged(link)) return {untag(link) + at, untag(link) + kHead};  // the head
    block = link;
    --index;
  }
  uint8_t* d = block_data(block);
  return {d + (at - kHead) % kBlockData, d + kBlockData};
}

// The buffer start of the bytes after a chunk's first block end: its newest block's data.
uint8_t* newest_data(uint8_t* data) { return tagged(data) ? block_data(untag(data)) : nullptr; }

// Copies a chunk's `size` bytes (its head, then its blocks) into a new buffer of exactly size.
std::unique_ptr<uint8_t[]> contiguous(uint8_t* data, size_t size) {
  auto out = std::make_unique_for_overwrite<uint8_t[]>(size);
  if (!tagged(data)) {
    std::memcpy(out.get(), data, size);
    return out;
  }
  std::vector<uint8_t*> blocks;  // newest first
  uint8_t* head = nullptr;
  for (uint8_t* b = untag(data);;) {
    blocks.push_back(b);
    uint8_t* link = link_of(b);
    if (tagged(link)) {
      head = untag(link);
      break;
    }
    b = link;
  }
  std::memcpy(out.get(), head, kHead);
  size_t at = kHead;
  for (auto it = blocks.rbegin(); it != blocks.rend() && at < size; ++it) {
    const size_t n = std::min(kBlockData, size - at);
    std::memcpy(out.get() + at, block_data(*it), n);
    at += n;
  }
  return out;
}

// Frees a chunk's buffer, or its head and blocks.
void free_data(uint8_t* data) {
  if (data == nullptr) return;
  if (!tagged(data)) {
    delete[] data;
    return;
  }
  for (uint8_t* b = untag(data);;) {
    uint8_t* link = link_of(b);
    delete[] b;
    if (tagged(link)) {
      delete[] untag(link);
      return;
    }
    b = link;
  }
}

}  // namespace

GorillaChunk& GorillaChunk::operator=(GorillaChunk&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    bits = std::exchange(other.bits, 0);
    count = std::exchange(other.count, 0);
    first_ts = other.first_ts;
    last_ts = other.last_ts;
  }
  return *this;
}

void GorillaChunk::release() {
  free_data(data_);
  data_ = nullptr;
}

namespace {

// Makes room for `n` more bits: the head buffer grown (16 bytes at a time, at most to
// kHeadBytes), then blocks added. Nothing is written: a failed allocation leaves the chunk's
// points as they were.
void reserve_bits(GorillaChunk& c, uint8_t*& data, uint32_t& capacity, uint32_t n) {
  const size_t need = (size_t{c.bits} + n + 7) / 8;
  if (need <= capacity) return;
  if (capacity < kHead) {
    const size_t grown = std::min(kHead, std::max(need, size_t{capacity} + kGrowBytes));
    auto head = std::make_unique_for_overwrite<uint8_t[]>(grown);
    if (c.bits != 0) std::memcpy(head.get(), data, c.size());
    delete[] data;
    data = head.release();
    capacity = static_cast<uint32_t>(grown);
  }
  while (capacity < need) {
    uint8_t* block = new uint8_t[kBlock];
    uint8_t* link = tagged(data) ? untag(data) : tag(data);  // the newest block, or the head
    std::memcpy(block, &link, sizeof link);
    data = tag(block);
    capacity += static_cast<uint32_t>(kBlockData);
  }
}

uint64_t bits_of(double v) { return std::bit_cast<uint64_t>(v); }
double double_of(uint64_t b) { return std::bit_cast<double>(b); }

// Decimal values (issue #10): a rate at 10 s is a count over 10, a gauge's mean over four
// processes a multiple of 0.25. Their doubles differ in most mantissa bits from one point to
// the next (~7 bytes a point as XOR), while value * 10^k is a small integer whose change takes
// a few bits. A chunk whose first value is such a decimal codes each next value, when it and
// the one before are decimals at the chunk's scale, as the difference of the integers. The
// scale, and whether a chunk stays in this mode, follow from the values themselves, so reader
// and writer keep the same state without a bit for it: the state after a value is
// next_decimal(state, value). Two values in a row that are no decimal at any scale (an EWMA
// rate) end the mode for the chunk: then it is plain Gorilla, bit for bit.
constexpr double kScales[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
constexpr int kScaleCount = 7;
// The state byte: the scale's index (bits 0-2), whether the last value is a decimal at that
// scale (kDecimal), values in a row that are not (bits 4-5), and kPlain once the mode ended.
constexpr uint8_t kDecimal = 0x08, kPlain = 0x80;
constexpr double kMaxScaled = 1099511627776.0;  // 2^40: llround of value * scale is exact

int scale_of(uint8_t state) { return state & 7; }

// Whether v is n / 10^scale exactly (bit for bit), with |n| < 2^40.
bool scaled(double v, int scale, int64_t& n) {
  const double s = kScales[scale];
  const double x = v * s;
  if (!(std::fabs(x) < kMaxScaled)) return false;  // NaN and infinities too
  n = std::llround(x);
  return std::bit_cast<uint64_t>(static_cast<double>(n) / s) == std::bit_cast<uint64_t>(v);
}

uint8_t first_decimal(double v) {
  int64_t n;
  for (int i = 0; i < kScaleCount; ++i)
    if (scaled(v, i, n)) return static_cast<uint8_t>(i | kDecimal);
  return kPlain;
}

uint8_t next_decimal(uint8_t state, double v) {
  if (state & kPlain) return state;
  int64_t n;
  if (scaled(v, scale_of(state), n)) return static_cast<uint8_t>(scale_of(state) | kDecimal);
  for (int i = 0; i < kScaleCount; ++i)
    if (scaled(v, i, n)) return static_cast<uint8_t>(i | kDecimal);
  const int misses = ((state >> 4) & 3) + 1;
  return misses >= 2 ? kPlain : static_cast<uint8_t>(scale_of(state) | (misses << 4));
}

// A decimal's difference from the one before: '0' + 7 bits, '10' + 12, '110' + 20, '111' + 64.
int delta_bits(int64_t d) {
  if (d >= -63 && d <= 64) return 8;
  if (d >= -2047 && d <= 2048) return 14;
  if (d >= -524287 && d <= 524288) return 23;
  return 67;
}

// Where an append writes: the byte that holds the next bit, and (when that byte is in a
// chunk's head or the block before its newest) where that buffer ends and the bytes go on.
struct Writer {
  uint8_t* at;
  uint8_t* end;   // null: at's buffer has room for every byte reserved
  uint8_t* next;  // the newest block's data
  uint32_t& bits;
  uint8_t& tail;  // the byte at `at` as written, while it is partly used

  void advance() {
    if (++at == end) {
      at = next;
      end = nullptr;
    }
  }
  // Appends the low `n` bits of `value` (1 <= n <= 64), most significant first: the rest of
  // the last byte, then whole bytes; the room is reserved. The bytes are only stored to, never
  // read, so a chunk whose bytes are out of cache costs a store, not a load the append waits
  // for.
  void put(uint64_t value, int n) {
    if (n < 64) value &= (uint64_t{1} << n) - 1;
    const int used = static_cast<int>(bits & 7);
    bits += static_cast<uint32_t>(n);
    if (used != 0) {
      const int room = 8 - used;
      if (n <= room) {
        tail = static_cast<uint8_t>(tail | (value << (room - n)));
        *at = tail;
        if (n == room) advance();
        return;
      }
      n -= room;
      *at = static_cast<uint8_t>(tail | (value >> n));
      advance();
    }
    while (n >= 8) {
      n -= 8;
      *at = static_cast<uint8_t>(value >> n);
      advance();
    }
    tail = static_cast<uint8_t>(value << (8 - n));
    if (n > 0) *at = tail;
  }
};

Writer writer_for(GorillaChunk& c, uint8_t* data, uint32_t capacity, uint8_t& tail) {
  Place p = place_of(data, capacity, c.bits >> 3);
  uint8_t* next = newest_data(data);
  if (next != nullptr && p.end == next + kBlockData) p.end = nullptr;  // the newest block
  return Writer{p.at, p.end, next, c.bits, tail};
}

// The bits put_dod writes for dod.
int dod_bits(int64_t dod) {
  if (dod == 0) return 1;
  if (dod >= -63 && dod <= 64) return 9;
  if (dod >= -255 && dod <= 256) return 12;
  if (dod >= -2047 && dod <= 2048) return 16;
  return 68;
}

void put_dod(Writer& w, int64_t dod) {
  if (dod == 0) return w.put(0, 1);
  if (dod >= -63 && dod <= 64) return w.put((0b10u << 7) | static_cast<uint64_t>(dod + 63), 9);
  if (dod >= -255 && dod <= 256)
    return w.put((uint64_t{0b110} << 9) | static_cast<uint64_t>(dod + 255), 12);
  if (dod >= -2047 && dod <= 2048)
    return w.put((uint64_t{0b1110} << 12) | static_cast<uint64_t>(dod + 2047), 16);
  w.put(0b1111, 4);
  w.put(static_cast<uint64_t>(dod), 64);
}

void put_delta(Writer& w, int64_t d) {
  if (d >= -63 && d <= 64) return w.put(static_cast<uint64_t>(d + 63), 8);
  if (d >= -2047 && d <= 2048)
    return w.put((uint64_t{0b10} << 12) | static_cast<uint64_t>(d + 2047), 14);
  if (d >= -524287 && d <= 524288)
    return w.put((uint64_t{0b110} << 20) | static_cast<uint64_t>(d + 524287), 23);
  w.put(0b111, 3);
  w.put(static_cast<uint64_t>(d), 64);
}

}  // namespace

void GorillaAppender::append(GorillaChunk& c, int64_t ts, double value) {
  const uint64_t vbits = bits_of(value);
  if (c.count == 0) {
    reserve_bits(c, c.data_, capacity, 64);
    c.first_ts = c.last_ts = ts;
    c.count = 1;
    Writer w = writer_for(c, c.data_, capacity, tail);
    w.put(vbits, 64);
    prev_delta = 0;
    prev_bits = vbits;
    leading = 0xff;
    decimal = first_decimal(value);
    return;
  }
  const int64_t delta = ts - c.last_ts;
  const int64_t dod = delta - prev_delta;
  const uint64_t x = vbits ^ prev_bits;
  // The point's bits, reserved at once (exactly: a small chunk grows by no more than before).
  const int lead = x == 0 ? 0 : std::min(31, std::countl_zero(x));
  const int trail = x == 0 ? 0 : std::countr_zero(x);
  const bool in_window = x != 0 && leading != 0xff && lead >= leading && trail >= trailing;
  // After the value's '1' (not equal): '0' + the window's bits, or '1' + a new window.
  const int xor_bits = in_window ? 1 + 64 - leading - trailing : 1 + 5 + 6 + 64 - lead - trail;
  const bool plain = (decimal & kPlain) != 0;
  int64_t n = 0, prev_n = 0;
  const bool as_delta = x != 0 && !plain && (decimal & kDecimal) != 0 &&
                        scaled(value, scale_of(decimal), n) &&
                        scaled(double_of(prev_bits), scale_of(decimal), prev_n);
  const int64_t dn = as_delta ? n - prev_n : 0;
  // Decimal mode: '10' + the difference, or '11' + the XOR forms.
  const int value_bits = x == 0 ? 1 : as_delta ? 2 + delta_bits(dn) : (plain ? 1 : 2) + xor_bits;
  reserve_bits(c, c.data_, capacity, static_cast<uint32_t>(dod_bits(dod) + value_bits));
  Writer w = writer_for(c, c.data_, capacity, tail);
  put_dod(w, dod);
  prev_delta = delta;
  c.last_ts = ts;
  ++c.count;
  prev_bits = vbits;
  if (x == 0) return w.put(0, 1);
  decimal = next_decimal(decimal, value);
  if (as_delta) {
    w.put(0b10, 2);
    return put_delta(w, dn);
  }
  if (plain) w.put(1, 1);
  else w.put(0b11, 2);
  if (in_window) {
    w.put(0, 1);
    w.put(x >> trailing, 64 - leading - trailing);
    return;
  }
  const int meaningful = 64 - lead - trail;
  w.put((uint64_t{1} << 11) | (static_cast<uint64_t>(lead) << 6) |
            static_cast<uint64_t>(meaningful - 1), 12);
  w.put(x >> trail, meaningful);
  leading = static_cast<uint8_t>(lead);
  trailing = static_cast<uint8_t>(trail);
}

void GorillaAppender::trim(GorillaChunk& c) {
  if (capacity == c.size() && !c.chained()) return;
  uint8_t* exact = c.bits == 0 ? nullptr : contiguous(c.data_, c.size()).release();
  free_data(c.data_);
  c.data_ = exact;
  capacity = static_cast<uint32_t>(c.size());
}

size_t GorillaAppender::heap_bytes(const GorillaChunk& chunk) const {
  return chunk.chained() ? kHead + blocks_for(capacity) * kBlock : capacity;
}

GorillaAppender encode_chunk(GorillaChunk& chunk, const std::vector<TimedValue>& points) {
  // Encoded aside and moved in at the end: a failed allocation leaves chunk as it was.
  GorillaChunk fresh;
  GorillaAppender appender;
  for (const TimedValue& p : points) appender.append(fresh, p.ts, p.value);
  chunk = std::move(fresh);
  return appender;
}

GorillaReader::GorillaReader(const GorillaChunk& chunk) : chunk_(chunk) {
  const size_t size = chunk.size();
  if (!chunk.chained()) {
    block_ = chunk.data_;
    block_end_ = static_cast<uint32_t>(size);
    return;
  }
  for (uint8_t* b = untag(chunk.data_);;) {  // newest first
    blocks_.push_back(block_data(b));
    uint8_t* link = link_of(b);
    if (tagged(link)) {
      blocks_.push_back(untag(link));
      break;
    }
    b = link;
  }
  std::reverse(blocks_.begin(), blocks_.end());  // the head, then the blocks oldest first
  block_ = blocks_[0];
  block_end_ = static_cast<uint32_t>(std::min(size, kHead));
}

void GorillaReader::next_block() {
  if (block_index_ + 1 >= blocks_.size()) {  // past the end: no more bytes
    block_ = nullptr;
    block_begin_ = block_end_ = UINT32_MAX;
    return;
  }
  block_ = blocks_[++block_index_];
  block_begin_ = block_end_;
  block_end_ = static_cast<uint32_t>(std::min(chunk_.size(), block_begin_ + kBlockData));
}

uint64_t GorillaReader::bits(int n) {
  uint64_t out = 0;
  while (n > 0) {
    const uint32_t byte = pos_ >> 3, used = pos_ & 7;
    const int room = 8 - static_cast<int>(used);
    const int take = std::min(room, n);
    if (byte >= block_end_ && byte < chunk_.size()) next_block();
    // Past the end (a damaged chunk, which the writer never makes) reads zero bits.
    const uint8_t b = byte < chunk_.size() && block_ != nullptr ? block_[byte - block_begin_] : 0;
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
    decimal_ = first_decimal(double_of(value_bits_));
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
    if ((decimal_ & kPlain) == 0 && bits(1) == 0) {  // a decimal's difference
      int64_t d;
      if (bits(1) == 0) d = static_cast<int64_t>(bits(7)) - 63;
      else if (bits(1) == 0) d = static_cast<int64_t>(bits(12)) - 2047;
      else if (bits(1) == 0) d = static_cast<int64_t>(bits(20)) - 524287;
      else d = static_cast<int64_t>(bits(64));
      int64_t prev_n = 0;
      scaled(double_of(value_bits_), scale_of(decimal_), prev_n);
      const auto n = static_cast<int64_t>(static_cast<uint64_t>(prev_n) + static_cast<uint64_t>(d));
      value_bits_ = bits_of(static_cast<double>(n) / kScales[scale_of(decimal_)]);
    } else {
      if (bits(1) != 0) {
        leading_ = static_cast<uint8_t>(bits(5));
        const int meaningful = static_cast<int>(bits(6)) + 1;
        trailing_ = static_cast<uint8_t>(64 - leading_ - meaningful);
      }
      const int meaningful = 64 - leading_ - trailing_;
      value_bits_ ^= bits(meaningful) << trailing_;
    }
    decimal_ = next_decimal(decimal_, double_of(value_bits_));
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
