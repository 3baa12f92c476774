#include "server/history_tier.h"

#include <algorithm>
#include <bit>

namespace statherd::server {

// What a path pays per tier (issue #10): a field added here shows as memory.
static_assert(sizeof(GorillaChunk) == 32);
static_assert(sizeof(HistoryTier) == 72);

namespace {

// Puts (ts, value) into the chunk's points: replaced or inserted in order; false when the point
// is there already, bit for bit.
bool put_in(std::vector<TimedValue>& points, int64_t ts, double value) {
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

}  // namespace

void HistoryTier::keep_closed(uint32_t from, GorillaChunk* added) {
  // Sized exactly (a path holds few chunks): the headers from `from` on, then `added`.
  const uint32_t count = closed_count_ - from + (added != nullptr ? 1 : 0);
  std::unique_ptr<GorillaChunk[]> kept;
  if (count != 0) kept = std::make_unique<GorillaChunk[]>(count);
  for (uint32_t i = from; i < closed_count_; ++i) kept[i - from] = std::move(closed_[i]);
  if (added != nullptr) kept[count - 1] = std::move(*added);
  closed_ = std::move(kept);
  closed_count_ = count;
}

void HistoryTier::put(int64_t ts, double value) {
  if (open_.count == 0 || ts > open_.last_ts) {
    if (open_.count >= kChunkPoints) {
      // The new chunk first: a failed allocation leaves the tier as it was (were open_ emptied
      // with closed chunks kept, the tier would read as empty).
      GorillaChunk fresh;
      GorillaAppender fresh_appender;
      fresh_appender.append(fresh, ts, value);
      appender_.trim(open_);
      keep_closed(0, &open_);
      open_ = std::move(fresh);
      appender_ = fresh_appender;
      return;
    }
    appender_.append(open_, ts, value);
    return;
  }
  // The chunk whose time range holds ts: the last one starting at or before it (an older ts
  // than every chunk goes to the first).
  if (ts >= open_.first_ts || closed_count_ == 0) return rewrite(open_, &appender_, ts, value);
  const GorillaChunk* begin = closed_.get();
  const GorillaChunk* it =
      std::upper_bound(begin, begin + closed_count_, ts,
                       [](int64_t t, const GorillaChunk& c) { return t < c.first_ts; });
  rewrite(closed_[it == begin ? 0 : static_cast<size_t>(it - begin) - 1], nullptr, ts, value);
}

void HistoryTier::rewrite(GorillaChunk& chunk, GorillaAppender* open, int64_t ts, double value) {
  std::vector<TimedValue> points = decode_chunk(chunk);
  if (!put_in(points, ts, value)) return;
  GorillaAppender appender = encode_chunk(chunk, points);
  if (open != nullptr) {
    *open = appender;
  } else {
    appender.trim(chunk);  // a closed chunk takes no appends
  }
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
  if (old != 0) keep_closed(old, nullptr);
}

size_t HistoryTier::point_count() const {
  size_t n = open_.count;
  for (uint32_t i = 0; i < closed_count_; ++i) n += closed_[i].count;
  return n;
}

size_t HistoryTier::memory_bytes() const {
  // new[] of a type with a destructor keeps the count before the array (8 bytes here).
  size_t n = appender_.heap_bytes(open_) + closed_count_ * sizeof(GorillaChunk) +
             (closed_count_ != 0 ? sizeof(size_t) : 0);
  for (uint32_t i = 0; i < closed_count_; ++i) n += closed_[i].size();
  return n;
}

}  // namespace statherd::server
