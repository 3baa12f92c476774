// A run of (timestamp, double) points compressed as in Facebook's Gorilla (Pelkonen et al.,
// VLDB 2015), grown one point at a time. One bit stream, most significant bit first:
//   first point:  timestamp in the chunk header (first_ts), value as 64 raw bits
//   each next:    timestamp as delta-of-delta of seconds (previous delta starts at 0):
//                   0                      '0'
//                   [-63, 64]              '10'   + 7 bits (dod + 63)
//                   [-255, 256]            '110'  + 9 bits (dod + 255)
//                   [-2047, 2048]          '1110' + 12 bits (dod + 2047)
//                   anything else          '1111' + 64 bits (two's complement)
//                 value as XOR with the previous value's bits:
//                   equal                  '0'
//                   inside the window      '10' + the window's meaningful bits
//                   new window             '11' + 5 bits leading zeros (at most 31)
//                                               + 6 bits (meaningful bits - 1) + the bits
// So a point of a regular series costs 1 bit of time; a constant costs 1 bit of value. Values
// are bit patterns: NaN payloads, ±Inf and -0.0 come back exactly. Timestamps must increase
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
// a path holds one per tier and more (issue #10), so the buffer is a bare pointer whose size
// follows from `bits` and whose capacity, while the chunk takes appends, is its appender's.
struct GorillaChunk {
  std::unique_ptr<uint8_t[]> bytes;  // the bit stream: size() bytes (more while open)
  uint32_t bits = 0;                 // bits used in `bytes`
  uint32_t count = 0;                // points
  int64_t first_ts = 0, last_ts = 0;

  size_t size() const { return (size_t{bits} + 7) / 8; }
};

// The encoder's state after the last point of one chunk: what append() needs to continue it,
// and the chunk buffer's capacity. Kept only for a tier's open (newest) chunk.
struct GorillaAppender {
  uint64_t prev_bits = 0;
  int64_t prev_delta = 0;
  uint32_t capacity = 0;                 // bytes allocated at chunk.bytes
  uint8_t leading = 0xff, trailing = 0;  // the value window; leading 0xff: none yet
  uint8_t tail = 0;                      // the chunk's last byte, while it is partly used

  // Appends a point; ts must be > chunk.last_ts unless the chunk is empty. The chunk is the one
  // this appender started (count 0, no buffer) or was returned for by encode_chunk.
  void append(GorillaChunk& chunk, int64_t ts, double value);
  // Gives back the growth slack of a chunk that takes no more appends (capacity = size()).
  void trim(GorillaChunk& chunk);
};

// Encodes points (ts increasing) into chunk, replacing what it held, in a buffer of
// reserve_bytes to start with (a rewrite passes about the old size: no regrowth from 16 bytes).
GorillaAppender encode_chunk(GorillaChunk& chunk, const std::vector<TimedValue>& points,
                             size_t reserve_bytes = 0);

// Reads a chunk's points in order.
class GorillaReader {
 public:
  explicit GorillaReader(const GorillaChunk& chunk) : chunk_(chunk) {}
  bool next(TimedValue& out);  // false after the last point

 private:
  uint64_t bits(int n);
  const GorillaChunk& chunk_;
  uint32_t pos_ = 0, read_ = 0;
  int64_t ts_ = 0, delta_ = 0;
  uint64_t value_bits_ = 0;
  uint8_t leading_ = 0, trailing_ = 0;
};

std::vector<TimedValue> decode_chunk(const GorillaChunk& chunk);

}  // namespace statherd::server
