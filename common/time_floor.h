// Interval arithmetic shared by the engine and the memory store.
#pragma once

#include <cstdint>

namespace statherd {

// The largest multiple of `step` (> 0) at or below t, for negative t too (floor, not truncate).
constexpr int64_t floor_to(int64_t t, int64_t step) {
  int64_t q = t / step;
  if (t % step != 0 && t < 0) --q;
  return q * step;
}

}  // namespace statherd
