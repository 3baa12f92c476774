#include "server/history_tier.h"

#include <algorithm>
#include <bit>

namespace statherd::server {

// Points of one chunk, decoded, with (ts, value) put in: replaced or inserted in order. false
// when the point is there already, bit for bit.
static bool put_in(std::vector<TimedValue>& points, int64_t ts, double value) {
  auto at = std::lower_bound(points.begin(), points.end(), ts,
                             [](const TimedValue& p, int64_t t) { return p.ts < t; });
  if (at != points.end() && at->ts == ts) {
    if (std::bit_cast<uint64_t>(at->value) == std::bit_cast<uint64_t>(value)) return false;
    at->value = value;
  } else {
    points.insert(at, TimedValue{ts, value});
  }
  return true;
}

void HistoryTier::close_open_chunk() {
  appender_.trim(open_);
  // The closed headers grow by one, not by doubling: a path holds few chunks.
  auto grown = std::make_unique<GorillaChunk[]>(size_t{closed_count_} + 1);
  for (uint32_t i = 0; i < closed_count_; ++i) grown[i] = std::move(closed_[i]);
  grown[closed_count_] = std::move(open_);
  closed_ = std::move(grown);
  ++closed_count_;
  open_ = GorillaChunk{};
  appender_ = GorillaAppender{};
}

void HistoryTier::put(int64_t ts, double value) {
  if (open_.count == 0 || ts > open_.last_ts) {
    if (open_.count >= kChunkPoints) close_open_chunk();
    appender_.append(open_, ts, value);
    return;
  }
  // The chunk whose time range holds ts: the last one starting at or before it (an older ts
  // than every chunk goes to the first).
  if (ts >= open_.first_ts || closed_count_ == 0) {
    std::vector<TimedValue> points = decode_chunk(open_);
    // Room for the old bytes and an inserted point's (a 64-bit dod and a new value window);
    // a rewrite that needs more grows as appends do.
    if (put_in(points, ts, value)) appender_ = encode_chunk(open_, points, open_.size() + 17);
    return;
  }
  const GorillaChunk* begin = closed_.get();
  const GorillaChunk* it = std::upper_bound(
      begin, begin + closed_count_, ts, [](int64_t t, const GorillaChunk& c) { return t < c.first_ts; });
  rewrite_closed(it == begin ? 0 : static_cast<size_t>(it - begin) - 1, ts, value);
}

void HistoryTier::rewrite_closed(size_t index, int64_t ts, double value) {
  GorillaChunk& chunk = closed_[index];
  std::vector<TimedValue> points = decode_chunk(chunk);
  if (!put_in(points, ts, value)) return;
  GorillaAppender appender = encode_chunk(chunk, points, chunk.size() + 17);
  appender.trim(chunk);
}

void HistoryTier::expire(int64_t cutoff) {
  if (open_.count == 0) return;
  if (open_.last_ts < cutoff) {  // the newest chunk is past: so is every other
    closed_.reset();
    closed_count_ = 0;
    open_ = GorillaChunk{};
    appender_ = GorillaAppender{};
    return;
  }
  uint32_t old = 0;
  while (old < closed_count_ && closed_[old].last_ts < cutoff) ++old;
  if (old == 0) return;
  const uint32_t left = closed_count_ - old;
  std::unique_ptr<GorillaChunk[]> kept;
  if (left != 0) {
    kept = std::make_unique<GorillaChunk[]>(left);
    for (uint32_t i = 0; i < left; ++i) kept[i] = std::move(closed_[old + i]);
  }
  closed_ = std::move(kept);
  closed_count_ = left;
}

size_t HistoryTier::point_count() const {
  size_t n = open_.count;
  for (uint32_t i = 0; i < closed_count_; ++i) n += closed_[i].count;
  return n;
}

size_t HistoryTier::memory_bytes() const {
  // new[] of a type with a destructor keeps the count before the array (8 bytes here).
  size_t n = appender_.capacity + closed_count_ * sizeof(GorillaChunk) +
             (closed_count_ != 0 ? sizeof(size_t) : 0);
  for (uint32_t i = 0; i < closed_count_; ++i) n += closed_[i].size();
  return n;
}

}  // namespace statherd::server
