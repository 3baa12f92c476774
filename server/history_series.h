// One Graphite path's history in downsampled tiers (server/retention.h), as Whisper keeps it:
// tier 0 gets the points; tier k+1 holds one point per bucket of its precision, computed from
// tier k's points in that bucket by the path's Downsample. A bucket is computed ("closed")
// when tier k gets a point of a later bucket, or when the bucket's time has passed (expire(),
// for a series that went quiet); the open bucket is computed on the fly when read. A point that
// lands in a closed bucket (a re-emitted interval: same ts, new value) recomputes that bucket,
// and so on down the tiers, so every tier shows the newest values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

#include "server/history_tier.h"
#include "server/retention.h"

namespace statherd::server {

// How a bucket of finer points becomes one coarser point.
enum class Downsample : uint8_t { Average, Sum, Min, Max };

// By the path's last node (the stat): count summed; sum summed when it is an amount (a
// distribution's sum of observations, `amount` true) and averaged when it is a level (a
// gauge's sum over processes); min kept as min; max as max; everything else averaged.
Downsample downsample_for(std::string_view stat, bool amount);

class HistorySeries {
 public:
  HistorySeries() = default;  // holds nothing (a MemoryStore slot not in use)
  HistorySeries(size_t tier_count, Downsample how);
  HistorySeries(HistorySeries&& other) noexcept { *this = std::move(other); }
  HistorySeries& operator=(HistorySeries&& other) noexcept;
  HistorySeries(const HistorySeries&) = delete;
  HistorySeries& operator=(const HistorySeries&) = delete;
  ~HistorySeries() { release(); }

  // Stores value at ts (aligned to tiers[0].precision_s by the caller) in tier 0 and brings
  // the coarser tiers up to date.
  void put(const std::vector<RetentionTier>& tiers, int64_t ts, double value);
  // Closes buckets whose time has passed at `now` and drops what each tier's retention has
  // passed; true when nothing is left.
  bool expire(const std::vector<RetentionTier>& tiers, int64_t now);

  // Tier t's points with first <= ts <= last, in order, its open bucket included.
  template <class Fn>
  void visit(const std::vector<RetentionTier>& tiers, size_t t, int64_t first, int64_t last,
             Fn&& fn) const {
    data(t).visit(first, last, fn);
    if (t == 0) return;
    const Up& u = up(t);
    if (u.open_bucket == kNoBucket || u.open_bucket < first || u.open_bucket > last) return;
    if (auto v = close(tiers, t - 1, u, tiers[t].precision_s)) fn(u.open_bucket, *v);
  }

  int64_t newest_ts() const { return data(0).newest_ts(); }
  Downsample downsample() const { return how_; }
  size_t point_count(size_t tier_count) const;
  size_t memory_bytes(size_t tier_count) const;  // heap bytes

 private:
  static constexpr int64_t kNoBucket = INT64_MIN;
  // A coarser tier (1, 2, ...): its points and the bucket it is folding. 88 bytes; tier 0,
  // which has no bucket, is a bare HistoryTier (72). One block holds them all, without the
  // count new[] keeps before an array: 160 bytes for 2 tiers, 248 for 3 (issue #10: a path
  // holds 2-3, and the allocator rounds 176 and 272 up to 192 and 288).
  struct Up {
    HistoryTier data;
    int64_t open_bucket = kNoBucket;  // the bucket of finer points not yet computed here
    // The finer tier's points in open_bucket, folded by how_ as they arrived in time order, so
    // closing the bucket decodes nothing. `folded` false: a point of the bucket was replaced
    // (a re-emission) or was there before the bucket opened: closing decodes them again.
    // n and folded share data.owner_word() (n below bit 31).
    double acc = 0;
    uint32_t n() const { return data.owner_word() & ~kFolded; }
    bool folded() const { return (data.owner_word() & kFolded) != 0; }
    void set_n(uint32_t n) { data.owner_word() = (data.owner_word() & kFolded) | (n & ~kFolded); }
    void set_folded(bool f) {
      data.owner_word() = (data.owner_word() & ~kFolded) | (f ? kFolded : 0);
    }
    static constexpr uint32_t kFolded = 0x8000'0000u;
  };
  static_assert(sizeof(Up) == 88);
  static_assert(alignof(Up) == alignof(HistoryTier));
  static constexpr size_t block_bytes(size_t tiers) {
    return sizeof(HistoryTier) + (tiers - 1) * sizeof(Up);
  }

  HistoryTier& data(size_t t) { return t == 0 ? *base() : up(t).data; }
  const HistoryTier& data(size_t t) const { return t == 0 ? *base() : up(t).data; }
  HistoryTier* base() { return std::launder(reinterpret_cast<HistoryTier*>(block_)); }
  const HistoryTier* base() const {
    return std::launder(reinterpret_cast<const HistoryTier*>(block_));
  }
  Up& up(size_t t) {  // t >= 1
    return *std::launder(
        reinterpret_cast<Up*>(block_ + sizeof(HistoryTier) + (t - 1) * sizeof(Up)));
  }
  const Up& up(size_t t) const {
    return *std::launder(
        reinterpret_cast<const Up*>(block_ + sizeof(HistoryTier) + (t - 1) * sizeof(Up)));
  }
  void release();

  void fold(Up& u, double value) const;
  std::optional<double> folded_value(const Up& u) const;
  // The value of u's open bucket (the finer tier t's points in it), folded or decoded.
  std::optional<double> close(const std::vector<RetentionTier>& tiers, size_t t, const Up& u,
                              int64_t width) const;
  void put_at(const std::vector<RetentionTier>& tiers, size_t t, int64_t ts, double value);
  // tier t's points in [bucket, bucket + width) by how_; nullopt when there are none.
  std::optional<double> aggregate(const std::vector<RetentionTier>& tiers, size_t t,
                                  int64_t bucket, int64_t width) const;

  std::byte* block_ = nullptr;  // tier 0, then tiers 1.. as Up
  uint32_t tier_count_ = 0;
  Downsample how_ = Downsample::Average;
};

}  // namespace statherd::server
