// One Graphite path's history in downsampled tiers (server/retention.h), as Whisper keeps it:
// tier 0 gets the points; tier k+1 holds one point per bucket of its precision, computed from
// tier k's points in that bucket by the path's Downsample. A bucket is computed ("closed")
// when tier k gets a point of a later bucket, or when the bucket's time has passed (expire(),
// for a series that went quiet); the open bucket is computed on the fly when read. A point that
// lands in a closed bucket (a re-emitted interval: same ts, new value) recomputes that bucket,
// and so on down the tiers, so every tier shows the newest values.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
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
  HistorySeries(size_t tier_count, Downsample how);

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
    tiers_[t].data.visit(first, last, fn);
    const int64_t open = tiers_[t].open_bucket;
    if (t == 0 || open == kNoBucket || open < first || open > last) return;
    if (auto v = close(tiers, t - 1, tiers_[t], tiers[t].precision_s)) fn(open, *v);
  }

  int64_t newest_ts() const { return tiers_[0].data.newest_ts(); }
  Downsample downsample() const { return how_; }
  size_t point_count(size_t tier_count) const;
  size_t memory_bytes(size_t tier_count) const;  // heap bytes

 private:
  static constexpr int64_t kNoBucket = INT64_MIN;
  // 88 bytes a tier (issue #10: a path holds 2-3).
  struct Tier {
    HistoryTier data;
    int64_t open_bucket = kNoBucket;  // the bucket of tier-1 points not yet computed here
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
  static_assert(sizeof(Tier) == 88);
  void fold(Tier& up, double value) const;
  std::optional<double> folded_value(const Tier& up) const;
  // The value of up's open bucket (the finer tier t's points in it), folded or decoded.
  std::optional<double> close(const std::vector<RetentionTier>& tiers, size_t t, const Tier& up,
                              int64_t width) const;
  void put_at(const std::vector<RetentionTier>& tiers, size_t t, int64_t ts, double value);
  // tier t's points in [bucket, bucket + width) by how_; nullopt when there are none.
  std::optional<double> aggregate(const std::vector<RetentionTier>& tiers, size_t t,
                                  int64_t bucket, int64_t width) const;

  std::unique_ptr<Tier[]> tiers_;
  Downsample how_;
};

}  // namespace statherd::server
