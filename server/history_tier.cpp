#include "server/history_tier.h"

#include <algorithm>
#include <bit>

namespace statherd::server {

void HistoryTier::put(int64_t ts, double value) {
  if (chunks_.empty() || ts > chunks_.back().last_ts) {
    if (chunks_.empty() || chunks_.back().count >= kChunkPoints) {
      if (!chunks_.empty()) chunks_.back().trim();
      // The vector of chunk headers grows by one, not by doubling: a path holds few chunks.
      if (chunks_.size() == chunks_.capacity()) chunks_.reserve(chunks_.size() + 1);
      chunks_.emplace_back();
      open_ = GorillaAppender{};
    }
    open_.append(chunks_.back(), ts, value);
    return;
  }
  // The chunk whose time range holds ts: the last one starting at or before it (an older ts
  // than every chunk goes to the first).
  auto it = std::upper_bound(chunks_.begin(), chunks_.end(), ts,
                             [](int64_t t, const GorillaChunk& c) { return t < c.first_ts; });
  size_t index = it == chunks_.begin() ? 0 : static_cast<size_t>(it - chunks_.begin()) - 1;
  rewrite(index, ts, value);
}

void HistoryTier::rewrite(size_t index, int64_t ts, double value) {
  GorillaChunk& chunk = chunks_[index];
  std::vector<TimedValue> points = decode_chunk(chunk);
  auto at = std::lower_bound(points.begin(), points.end(), ts,
                             [](const TimedValue& p, int64_t t) { return p.ts < t; });
  if (at != points.end() && at->ts == ts) {
    if (std::bit_cast<uint64_t>(at->value) == std::bit_cast<uint64_t>(value)) return;
    at->value = value;
  } else {
    points.insert(at, TimedValue{ts, value});
  }
  GorillaAppender appender = encode_chunk(chunk, points);
  if (index + 1 == chunks_.size()) open_ = appender;
  else chunk.trim();
}

void HistoryTier::expire(int64_t cutoff) {
  size_t old = 0;
  while (old < chunks_.size() && chunks_[old].last_ts < cutoff) ++old;
  if (old == 0) return;
  chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<std::ptrdiff_t>(old));
  if (chunks_.empty()) {
    chunks_.shrink_to_fit();
    open_ = GorillaAppender{};
  }
}

size_t HistoryTier::point_count() const {
  size_t n = 0;
  for (const GorillaChunk& c : chunks_) n += c.count;
  return n;
}

size_t HistoryTier::memory_bytes() const {
  size_t n = (chunks_.capacity() - chunks_.size()) * sizeof(GorillaChunk);
  for (const GorillaChunk& c : chunks_) n += c.memory_bytes();
  return n;
}

}  // namespace statherd::server
