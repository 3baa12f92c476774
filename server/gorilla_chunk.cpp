#include "server/gorilla_chunk.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

namespace statherd::server {

namespace {

constexpr size_t kHead = GorillaChunk::kHeadBytes;
constexpr size_t kBlock = GorillaChunk::kBlockBytes;
constexpr size_t kBlockData = GorillaChunk::kBlockData;
// The head buffer grows this much at a time (a copy each: it is small).
constexpr size_t kGrowBytes = 16;

uint8_t* untag(uint8_t* p) {
  return reinterpret_cast<uint8_t*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{1});
}
uint8_t* tag(uint8_t* p) { return reinterpret_cast<uint8_t*>(reinterpret_cast<uintptr_t>(p) | 1); }
bool tagged(const uint8_t* p) { return (reinterpret_cast<uintptr_t>(p) & 1) != 0; }

// A block's link: the block before it, or (tagged) the head buffer.
uint8_t* link_of(const uint8_t* block) {
  uint8_t* link;
  std::memcpy(&link, block, sizeof link);
  return link;
}
uint8_t* block_data(uint8_t* block) { return block + sizeof(uint8_t*); }

// Adds a block after a chunk's newest one (or after its head) and makes it the newest.
void add_block(uint8_t*& data) {
  uint8_t* block = new uint8_t[kBlock];
  uint8_t* link = tagged(data) ? untag(data) : tag(data);  // the newest block, or the head
  std::memcpy(block, &link, sizeof link);
  data = tag(block);
}

// A chained chunk's buffers in stream order: its head, then its blocks' data, oldest first.
std::vector<const uint8_t*> chain_of(uint8_t* data) {
  std::vector<const uint8_t*> buffers;
  for (uint8_t* b = untag(data);;) {  // newest first
    buffers.push_back(block_data(b));
    uint8_t* link = link_of(b);
    if (tagged(link)) {
      buffers.push_back(untag(link));
      break;
    }
    b = link;
  }
  std::reverse(buffers.begin(), buffers.end());
  return buffers;
}

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
  const std::vector<const uint8_t*> buffers = chain_of(data);
  std::memcpy(out.get(), buffers[0], kHead);
  size_t at = kHead;
  for (size_t i = 1; i < buffers.size() && at < size; ++i) {
    const size_t n = std::min(kBlockData, size - at);
    std::memcpy(out.get() + at, buffers[i], n);
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

// A trimmed chunk (one buffer of more than kHeadBytes) that takes appends again: its bytes
// become a head and blocks, as if they had been appended. Nothing changes if an allocation
// fails.
void rechain(GorillaChunk& c, uint8_t*& data, uint32_t& capacity) {
  const size_t used = c.size();
  uint8_t* fresh = new uint8_t[kHead];
  size_t room = kHead;
  try {
    std::memcpy(fresh, data, kHead);
    for (size_t at = kHead; at < used; at += kBlockData) {
      add_block(fresh);
      room += kBlockData;
      std::memcpy(block_data(untag(fresh)), data + at, std::min(kBlockData, used - at));
    }
  } catch (...) {
    free_data(fresh);
    throw;
  }
  delete[] data;
  data = fresh;
  capacity = static_cast<uint32_t>(room);
}

// Makes room for `n` more bits: the head buffer grown (16 bytes at a time, at most to
// kHeadBytes), then blocks added. Nothing is written: a failed allocation leaves the chunk's
// points as they were.
void reserve_bits(GorillaChunk& c, uint8_t*& data, uint32_t& capacity, uint32_t n) {
  const size_t need = (size_t{c.bits} + n + 7) / 8;
  if (need <= capacity) return;
  if (!tagged(data) && capacity > kHead) rechain(c, data, capacity);
  if (capacity < kHead) {
    const size_t grown = std::min(kHead, std::max(need, size_t{capacity} + kGrowBytes));
    auto head = std::make_unique_for_overwrite<uint8_t[]>(grown);
    if (c.bits != 0) std::memcpy(head.get(), data, c.size());
    delete[] data;
    data = head.release();
    capacity = static_cast<uint32_t>(grown);
  }
  while (capacity < need) {
    add_block(data);
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

// A prefix code of value ranges, for timestamps' delta-of-delta and decimals' differences:
// range i of n is written as i '1's and a '0' (the last range: n - 1 '1's), then `bits` bits
// of value - lo (the last range: the value's 64 bits, two's complement).
struct Range {
  int64_t lo, hi;
  int bits;
};
// '0', '10' + 7 bits, '110' + 9, '1110' + 12, '1111' + 64.
constexpr Range kDodRanges[] = {{0, 0, 0}, {-63, 64, 7}, {-255, 256, 9}, {-2047, 2048, 12},
                                {INT64_MIN, INT64_MAX, 64}};
// '0' + 7 bits, '10' + 12, '110' + 20, '111' + 64.
constexpr Range kDeltaRanges[] = {{-63, 64, 7}, {-2047, 2048, 12}, {-524287, 524288, 20},
                                  {INT64_MIN, INT64_MAX, 64}};

// The range of `ranges` that holds v, and the bits of its prefix.
template <size_t N>
size_t range_of(const Range (&ranges)[N], int64_t v) {
  size_t i = 0;
  while (i + 1 < N && (v < ranges[i].lo || v > ranges[i].hi)) ++i;
  return i;
}
template <size_t N>
int prefix_bits(size_t i) {
  return static_cast<int>(i + 1 < N ? i + 1 : i);
}
template <size_t N>
int coded_bits(const Range (&ranges)[N], int64_t v) {
  const size_t i = range_of(ranges, v);
  return prefix_bits<N>(i) + ranges[i].bits;
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

template <size_t N>
void put_coded(Writer& w, const Range (&ranges)[N], int64_t v) {
  const size_t i = range_of(ranges, v);
  const int prefix = prefix_bits<N>(i);
  const uint64_t ones = (uint64_t{1} << i) - 1;
  w.put(i + 1 < N ? ones << 1 : ones, prefix);
  if (ranges[i].bits == 0) return;
  const bool last = i + 1 == N;
  w.put(last ? static_cast<uint64_t>(v) : static_cast<uint64_t>(v - ranges[i].lo), ranges[i].bits);
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
  const int value_bits =
      x == 0 ? 1 : as_delta ? 2 + coded_bits(kDeltaRanges, dn) : (plain ? 1 : 2) + xor_bits;
  reserve_bits(c, c.data_, capacity,
               static_cast<uint32_t>(coded_bits(kDodRanges, dod) + value_bits));
  Writer w = writer_for(c, c.data_, capacity, tail);
  put_coded(w, kDodRanges, dod);
  prev_delta = delta;
  c.last_ts = ts;
  ++c.count;
  prev_bits = vbits;
  if (x == 0) return w.put(0, 1);
  decimal = next_decimal(decimal, value);
  if (as_delta) {
    w.put(0b10, 2);
    return put_coded(w, kDeltaRanges, dn);
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
  blocks_ = chain_of(chunk.data_);
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

template <class Ranges>
int64_t GorillaReader::coded(const Ranges& ranges) {
  constexpr size_t N = std::extent_v<Ranges>;
  size_t i = 0;
  while (i + 1 < N && bits(1) != 0) ++i;
  if (ranges[i].bits == 0) return ranges[i].lo;
  const uint64_t v = bits(ranges[i].bits);
  if (i + 1 == N) return static_cast<int64_t>(v);
  return static_cast<int64_t>(static_cast<uint64_t>(ranges[i].lo) + v);
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
  delta_ += coded(kDodRanges);
  ts_ += delta_;
  if (bits(1) != 0) {
    if ((decimal_ & kPlain) == 0 && bits(1) == 0) {  // a decimal's difference
      const int64_t d = coded(kDeltaRanges);
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
