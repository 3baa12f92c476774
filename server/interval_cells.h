// The cells of an interval (one per slot that had data in it) and their packed form.
//
// An emitted interval is kept for the late window (10 minutes by default): late data re-emits
// it with full values, which needs every cell. At 400k series and 10 s that is 60 intervals of
// 400k cells: 16 bytes each unpacked (~380 MB), so an emitted interval is kept packed and
// unpacked only when late data reaches it.
//
// Packed form: the cell count (varint), then per cell in order a varint header
// zigzag(slot - previous slot) << 3 | has_dist << 2 | value form, then the value (form 0: a
// zigzag varint of an integral value, 1: 4 bytes of an exactly representable float, 2: the 8
// bytes of the double), then the dist index (varint) when has_dist. Little-endian. Slots come
// nearly in order (batches arrive in the order their slots were made), so a counter's cell
// takes 2-4 bytes.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace statherd::server {

inline constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

struct Cell {
  uint32_t slot;
  uint32_t dist = kNone;  // index into Interval::dists (the interval's delta)
  double value = 0;       // counter: sum of deltas; gauge: last value
};

std::vector<uint8_t> pack_cells(std::span<const Cell> cells);
// The cells pack_cells() packed, in their order. Throws std::runtime_error on bytes it did not
// write (a truncated or altered blob from a snapshot).
std::vector<Cell> unpack_cells(std::span<const uint8_t> packed);

}  // namespace statherd::server
