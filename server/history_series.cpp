#include "server/history_series.h"

#include <algorithm>
#include <new>
#include <type_traits>
#include <utility>

#include "common/time_floor.h"

namespace statherd::server {

Downsample downsample_for(std::string_view stat, bool amount) {
  if (stat == "count") return Downsample::Sum;
  if (stat == "sum") return amount ? Downsample::Sum : Downsample::Average;
  if (stat == "min") return Downsample::Min;
  if (stat == "max") return Downsample::Max;
  return Downsample::Average;
}

static_assert(sizeof(HistorySeries) == 16);

HistorySeries::HistorySeries(size_t tier_count, Downsample how)
    : tier_count_(static_cast<uint32_t>(std::max<size_t>(1, tier_count))), how_(how) {
  // The tiers are built one by one in the block: none may throw (nothing would unwind them).
  static_assert(std::is_nothrow_default_constructible_v<HistoryTier> &&
                std::is_nothrow_default_constructible_v<Up>);
  block_ = static_cast<std::byte*>(::operator new(block_bytes(tier_count_)));
  new (block_) HistoryTier();
  for (size_t t = 1; t < tier_count_; ++t) new (&up(t)) Up();
}

HistorySeries& HistorySeries::operator=(HistorySeries&& other) noexcept {
  if (this != &other) {
    release();
    block_ = std::exchange(other.block_, nullptr);
    tier_count_ = std::exchange(other.tier_count_, 0);
    how_ = other.how_;
  }
  return *this;
}

void HistorySeries::release() {
  if (block_ == nullptr) return;
  for (size_t t = tier_count_; t-- > 1;) up(t).~Up();
  base()->~HistoryTier();
#if defined(__cpp_sized_deallocation)  // g++; clang before 19 only with -fsized-deallocation
  ::operator delete(block_, block_bytes(tier_count_));
#else
  ::operator delete(block_);
#endif
  block_ = nullptr;
  tier_count_ = 0;
}

void HistorySeries::put(const std::vector<RetentionTier>& tiers, int64_t ts, double value) {
  put_at(tiers, 0, ts, value);
}

void HistorySeries::put_at(const std::vector<RetentionTier>& tiers, size_t t, int64_t ts,
                           double value) {
  const int64_t newest = data(t).newest_ts();  // before this point
  data(t).put(ts, value);
  if (t + 1 >= tiers.size()) return;
  Up& up = this->up(t + 1);
  const int64_t width = tiers[t + 1].precision_s;
  const int64_t bucket = floor_to(ts, width);
  if (up.open_bucket == kNoBucket || bucket > up.open_bucket) {
    const int64_t closing = up.open_bucket;
    const std::optional<double> closed =
        closing == kNoBucket ? std::nullopt : close(tiers, t, up, width);
    up.open_bucket = bucket;
    up.acc = 0;
    up.set_n(0);
    up.set_folded(newest < bucket);  // no earlier point of tier t in the bucket
    if (up.folded()) fold(up, value);
    if (closed) put_at(tiers, t + 1, closing, *closed);
  } else if (bucket == up.open_bucket) {
    if (ts > newest) fold(up, value);
    else up.set_folded(false);  // a point replaced or inserted: fold no more
  } else {
    // A closed bucket changed: compute it again from what tier t holds now.
    if (auto v = aggregate(tiers, t, bucket, width)) put_at(tiers, t + 1, bucket, *v);
  }
}

void HistorySeries::fold(Up& up, double v) const {
  switch (how_) {
    case Downsample::Average:
    case Downsample::Sum: up.acc += v; break;
    case Downsample::Min: up.acc = up.n() == 0 ? v : std::min(up.acc, v); break;
    case Downsample::Max: up.acc = up.n() == 0 ? v : std::max(up.acc, v); break;
  }
  up.set_n(up.n() + 1);
}

std::optional<double> HistorySeries::folded_value(const Up& up) const {
  if (up.n() == 0) return std::nullopt;
  return how_ == Downsample::Average ? up.acc / static_cast<double>(up.n()) : up.acc;
}

std::optional<double> HistorySeries::close(const std::vector<RetentionTier>& tiers, size_t t,
                                           const Up& up, int64_t width) const {
  return up.folded() ? folded_value(up) : aggregate(tiers, t, up.open_bucket, width);
}

std::optional<double> HistorySeries::aggregate(const std::vector<RetentionTier>& tiers, size_t t,
                                               int64_t bucket, int64_t width) const {
  double acc = 0;
  size_t n = 0;
  visit(tiers, t, bucket, bucket + width - 1, [&](int64_t, double v) {
    switch (how_) {
      case Downsample::Average:
      case Downsample::Sum: acc += v; break;
      case Downsample::Min: acc = n == 0 ? v : std::min(acc, v); break;
      case Downsample::Max: acc = n == 0 ? v : std::max(acc, v); break;
    }
    ++n;
  });
  if (n == 0) return std::nullopt;
  return how_ == Downsample::Average ? acc / static_cast<double>(n) : acc;
}

bool HistorySeries::expire(const std::vector<RetentionTier>& tiers, int64_t now) {
  // First close the buckets whose time has passed (their points below may expire next).
  for (size_t t = 0; t + 1 < tiers.size(); ++t) {
    Up& up = this->up(t + 1);
    const int64_t width = tiers[t + 1].precision_s;
    if (up.open_bucket == kNoBucket || up.open_bucket + width > now) continue;
    const int64_t closing = up.open_bucket;
    const std::optional<double> closed = close(tiers, t, up, width);
    up.open_bucket = kNoBucket;
    up.set_folded(false);
    if (closed) put_at(tiers, t + 1, closing, *closed);
  }
  bool empty = true;
  for (size_t t = 0; t < tiers.size(); ++t) {
    data(t).expire(now - tiers[t].retention_s);
    empty = empty && data(t).empty() && (t == 0 || up(t).open_bucket == kNoBucket);
  }
  return empty;
}

size_t HistorySeries::point_count(size_t tier_count) const {
  size_t n = 0;
  tier_count = std::min<size_t>(tier_count, tier_count_);
  for (size_t t = 0; t < tier_count; ++t) n += data(t).point_count();
  return n;
}

size_t HistorySeries::memory_bytes(size_t tier_count) const {
  tier_count = std::min<size_t>(tier_count, tier_count_);
  if (tier_count == 0) return 0;
  size_t n = block_bytes(tier_count);
  for (size_t t = 0; t < tier_count; ++t) n += data(t).memory_bytes();
  return n;
}

}  // namespace statherd::server
