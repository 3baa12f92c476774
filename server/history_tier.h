// One path's points at one precision: Gorilla chunks (server/gorilla_chunk.h) of up to
// kChunkPoints points, oldest first. New points append to the open (last) chunk; a point at
// or before its last timestamp (a re-emitted interval: same ts, new value; or a late, older
// one) rewrites the chunk that holds its time: decode, replace or insert, encode. Nothing is
// preallocated: an open chunk grows 16 bytes at a time to 64, then by 64-byte blocks it never
// copies (server/gorilla_chunk.h), and moves into one buffer of its size when it closes. The open chunk's header and its encoder state live in the tier itself
// and the closed chunks' headers in one array sized to them, so an append reads no other heap
// block (the chunk's bytes are only stored to): at a million paths per interval each block a
// put reads is a cache miss, and each header a path holds is RAM (issue #10).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "server/gorilla_chunk.h"

namespace statherd::server {

class HistoryTier {
 public:
  // 256 points: 42 min at 10s, 21 h at 5m. A rewrite decodes and encodes at most this many.
  static constexpr uint32_t kChunkPoints = 256;

  // Stores value at ts, replacing a point with the same ts.
  void put(int64_t ts, double value);
  // Drops chunks whose newest point is older than cutoff (so up to one chunk of points
  // older than cutoff may stay; readers cut at the retention themselves).
  void expire(int64_t cutoff);

  // Calls fn(ts, value) for every point with first <= ts <= last, in order.
  template <class Fn>
  void visit(int64_t first, int64_t last, Fn&& fn) const {
    for (uint32_t i = 0; i < closed_count_; ++i)
      if (!visit_chunk(closed_[i], first, last, fn)) return;
    if (open_.count != 0) visit_chunk(open_, first, last, fn);
  }

  bool empty() const { return open_.count == 0; }
  int64_t newest_ts() const { return open_.count == 0 ? INT64_MIN : open_.last_ts; }
  size_t chunk_count() const { return closed_count_ + (open_.count != 0 ? 1 : 0); }
  size_t point_count() const;
  // Heap bytes: the closed chunks' headers and every chunk's buffer (the open chunk's header
  // is part of the tier object).
  size_t memory_bytes() const;

 private:
  // false once a point after `last` is seen (no later chunk holds one in range).
  template <class Fn>
  static bool visit_chunk(const GorillaChunk& c, int64_t first, int64_t last, Fn& fn) {
    if (c.last_ts < first) return true;
    if (c.first_ts > last) return false;
    GorillaReader reader(c);
    TimedValue p;
    while (reader.next(p)) {
      if (p.ts > last) return false;
      if (p.ts >= first) fn(p.ts, p.value);
    }
    return true;
  }
  // Decodes chunk, puts the point in and encodes it again; `open` is the open chunk's appender,
  // null for a closed chunk (then trimmed).
  void rewrite(GorillaChunk& chunk, GorillaAppender* open, int64_t ts, double value);
  // Keeps the closed chunks from index `from` on, then `added` (moved from) if not null.
  void keep_closed(uint32_t from, GorillaChunk* added);

  // Invariant: open_.count == 0 only when the tier holds no point (no closed chunk either).
  GorillaChunk open_;                          // the newest chunk, which takes appends
  GorillaAppender appender_;                   // continues open_
  std::unique_ptr<GorillaChunk[]> closed_;     // full chunks, oldest first, trimmed
  uint32_t closed_count_ = 0;
  uint32_t owner_word_ = 0;

 public:
  // 32 bits the tier does not use, for its owner (HistorySeries keeps its bucket's state
  // here): the object's tail padding otherwise.
  uint32_t& owner_word() { return owner_word_; }
  uint32_t owner_word() const { return owner_word_; }
};

}  // namespace statherd::server
