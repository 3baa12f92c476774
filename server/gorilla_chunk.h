// A run of (timestamp, double) points compressed as in Facebook's Gorilla (Pelkonen et al.,
// VLDB 2015), grown one point at a time. One bit stream, most significant bit first:
//   first point:  timestamp in the chunk header (first_ts), value as 64 raw bits
//   each next:    timestamp as delta-of-delta of seconds (previous delta starts at 0):
//                   0                      '0'
//                   [-63, 64]              '10'   + 7 bits (dod + 63)
//                   [-255, 256]            '110'  + 9 bits (dod + 255)
//                   [-2047, 2048]          '1110' + 12 bits (dod + 2047)
//                   anything else          '1111' + 64 bits (two's complement)
//                 value, in a chunk in plain mode, as XOR with the previous value's bits:
//                   equal                  '0'
//                   inside the window      '10' + the window's meaningful bits
//                   new window             '11' + 5 bits leading zeros (at most 31)
//                                               + 6 bits (meaningful bits - 1) + the bits
//                 in decimal mode (gorilla_chunk.cpp: a chunk whose values are n / 10^k):
//                   equal                  '0'
//                   both decimals          '10' + the difference of the n's:
//                                               '0' + 7 bits, '10' + 12, '110' + 20, '111' + 64
//                   else                   '11' + the XOR forms above without their '1'
// So a point of a regular series costs 1 bit of time; a constant costs 1 bit of value; a rate
// at 10 s (a count over 10) about 10 bits, not ~55. Values are bit patterns: NaN payloads,
// ±Inf and -0.0 come back exactly. Timestamps must increase
// within a chunk: the appender never sees anything else (the tier rewrites a chunk for an
// out-of-order point or an overwrite, server/history_tier.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace statherd::server {

struct TimedValue {
  int64_t ts = 0;
  double value = 0;
  bool operator==(const TimedValue&) const = default;  // value by ==: NaN never equal
};

// The compressed bytes and what a reader needs to find a chunk without decoding it. 32 bytes:
// a path holds one per tier and more (issue #10).
//
// Storage. A closed chunk (trimmed) keeps its bytes in one buffer of size() bytes. An open one
// grows without copying once past kHeadBytes: its first kHeadBytes in one buffer (grown 16
// bytes at a time while smaller, so a series seen a few times costs a few bytes), the rest in
// blocks of kBlockBytes, each starting with a link to the block before it (the first block's
// link, tagged, to that head buffer); the chunk then points at its newest block. Why: every
// open chunk of a store grows in step (one point an interval), and buffers copied into ever
// larger size classes left the smaller ones they freed unused, since no other chunk needed
// that size any more: 50 MiB of free 160- and 208-byte objects beside ~480 MiB in use at 400k
// process series after five minutes (issue #10). Every block is the same size, so one freed
// block (at trim) fits any chunk that grows next.
struct GorillaChunk {
  static constexpr size_t kHeadBytes = 64;
  static constexpr size_t kBlockBytes = 64;
  static constexpr size_t kBlockData = kBlockBytes - sizeof(void*);  // 56

  GorillaChunk() = default;
  GorillaChunk(GorillaChunk&& other) noexcept { *this = std::move(other); }
  GorillaChunk& operator=(GorillaChunk&& other) noexcept;
  GorillaChunk(const GorillaChunk&) = delete;
  GorillaChunk& operator=(const GorillaChunk&) = delete;
  ~GorillaChunk() { release(); }

  uint32_t bits = 0;                 // bits used
  uint32_t count = 0;                // points
  int64_t first_ts = 0, last_ts = 0;

  size_t size() const { return (size_t{bits} + 7) / 8; }
  bool chained() const { return (reinterpret_cast<uintptr_t>(data_) & 1) != 0; }

 private:
  friend struct GorillaAppender;
  friend class GorillaReader;
  void release();
  // The head buffer, or (chained) the newest block, tagged with bit 0.
  uint8_t* data_ = nullptr;
};

// The encoder's state after the last point of one chunk: what append() needs to continue it,
// and the chunk's capacity. Kept only for a tier's open (newest) chunk.
struct GorillaAppender {
  uint64_t prev_bits = 0;
  int64_t prev_delta = 0;
  uint32_t capacity = 0;                 // bytes the chunk can hold without another allocation
  uint8_t leading = 0xff, trailing = 0;  // the value window; leading 0xff: none yet
  uint8_t tail = 0;                      // the chunk's last byte, while it is partly used
  uint8_t decimal = 0;                   // the decimal mode's state (gorilla_chunk.cpp)

  // Appends a point; ts must be > chunk.last_ts unless the chunk is empty. The chunk is the one
  // this appender started (count 0, no buffer) or was returned for by encode_chunk.
  void append(GorillaChunk& chunk, int64_t ts, double value);
  // Moves a chunk into one buffer of size() bytes (a closed chunk: no growth slack). An append
  // after it makes a head and blocks of it again.
  void trim(GorillaChunk& chunk);
  // The heap bytes the chunk holds (its blocks' links included).
  size_t heap_bytes(const GorillaChunk& chunk) const;
};

// Encodes points (ts increasing) into chunk, replacing what it held, as appends do.
GorillaAppender encode_chunk(GorillaChunk& chunk, const std::vector<TimedValue>& points);

// Reads a chunk's points in order.
class GorillaReader {
 public:
  explicit GorillaReader(const GorillaChunk& chunk);
  bool next(TimedValue& out);  // false after the last point

 private:
  uint64_t bits(int n);
  // A value of a prefix code of ranges (gorilla_chunk.cpp).
  template <class Ranges>
  int64_t coded(const Ranges& ranges);
  void next_block();
  const GorillaChunk& chunk_;
  // The bytes being read: [block_, block_ + (block_end_ - block_begin_)) holds the stream's
  // bytes [block_begin_, block_end_). A chained chunk's blocks, oldest first, in blocks_.
  const uint8_t* block_ = nullptr;
  uint32_t block_begin_ = 0, block_end_ = 0, block_index_ = 0;
  std::vector<const uint8_t*> blocks_;
  uint32_t pos_ = 0, read_ = 0;
  int64_t ts_ = 0, delta_ = 0;
  uint64_t value_bits_ = 0;
  uint8_t leading_ = 0, trailing_ = 0, decimal_ = 0;
};

std::vector<TimedValue> decode_chunk(const GorillaChunk& chunk);

}  // namespace statherd::server
