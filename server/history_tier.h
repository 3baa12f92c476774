// One path's points at one precision: Gorilla chunks (server/gorilla_chunk.h) of up to
// kChunkPoints points, oldest first. New points append to the open (last) chunk; a point at
// or before its last timestamp (a re-emitted interval: same ts, new value; or a late, older
// one) rewrites the chunk that holds its time: decode, replace or insert, encode. Nothing is
// preallocated: an open chunk grows 16 bytes at a time, by a quarter once past 64 bytes, and is
// trimmed when it closes.
#pragma once

#include <cstdint>
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
    for (const GorillaChunk& c : chunks_) {
      if (c.last_ts < first) continue;
      if (c.first_ts > last) break;
      GorillaReader reader(c);
      TimedValue p;
      while (reader.next(p)) {
        if (p.ts > last) break;
        if (p.ts >= first) fn(p.ts, p.value);
      }
    }
  }

  bool empty() const { return chunks_.empty(); }
  int64_t newest_ts() const { return chunks_.empty() ? INT64_MIN : chunks_.back().last_ts; }
  size_t point_count() const;
  size_t memory_bytes() const;  // heap bytes, chunk headers included

 private:
  void rewrite(size_t chunk, int64_t ts, double value);

  std::vector<GorillaChunk> chunks_;
  GorillaAppender open_;  // continues chunks_.back()
};

}  // namespace statherd::server
