// memory.retention / --retention: the memory store's tiers in Graphite's retention syntax,
// "PRECISION:RETENTION[,PRECISION:RETENTION...]" (e.g. "10s:6h,5m:7d"), finest first. The old
// single duration ("1h") still means one tier at the server's interval. Durations use the
// config's units (s, m, h, d, ms; a bare number is seconds).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace statherd::server {

struct RetentionTier {
  int64_t precision_s = 0;  // 0: the server's interval (the single-duration form)
  int64_t retention_s = 0;
  bool operator==(const RetentionTier&) const = default;
};

// Most points one tier may hold per path (retention / precision).
inline constexpr int64_t kMaxPointsPerTier = 100'000;

// The syntax only: every part a duration, at most 8 tiers. Empty text: no tiers (defaults).
Result<std::vector<RetentionTier>> parse_retention(std::string_view text);

// The tiers `text` means at `interval_s`, checked: each precision a multiple of the interval
// and of the previous tier's, each retention longer than the previous and at least its
// precision, at most kMaxPointsPerTier points a tier; empty text gives default_retention().
// An error names the tier and carries a hint.
Result<std::vector<RetentionTier>> resolve_retention(std::string_view text, int64_t interval_s);

// The defaults, following the interval I (default 10s):
//   I = 10s:                       10s:6h,5m:7d
//   I < 10s and divides 10s:       I:1h,10s:6h,5m:7d
//   otherwise:                     I:6h, then P:7d with P the first multiple of I >= 5m
//                                  (no second tier when I >= 5m: I:7d)
std::vector<RetentionTier> default_retention(int64_t interval_s);

// "10s:6h,5m:7d"
std::string retention_text(const std::vector<RetentionTier>& tiers);

}  // namespace statherd::server
