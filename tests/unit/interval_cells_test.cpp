// The packed form of an emitted interval's cells gives back exactly the cells it was given, and
// refuses bytes it did not write.
#include "server/interval_cells.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

namespace statherd::server {
namespace {

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

void expect_round_trip(const std::vector<Cell>& cells) {
  const std::vector<Cell> back = unpack_cells(pack_cells(cells));
  ASSERT_EQ(back.size(), cells.size());
  for (size_t i = 0; i < cells.size(); ++i) {
    EXPECT_EQ(back[i].slot, cells[i].slot) << i;
    EXPECT_EQ(back[i].dist, cells[i].dist) << i;
    EXPECT_TRUE(same_bits(back[i].value, cells[i].value)) << i << ": " << cells[i].value;
  }
}

TEST(IntervalCells, EveryValueFormRoundTripsBitForBit) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> values = {0.0, -0.0, 1.0, -1.0, 3.0e15, -8.9e15, 9.1e15, 1e300,
                                      0.5, 12.25, -0.125, 0.1, 1.0 / 3.0, 4.9e-324, nan, inf,
                                      -inf, 2147483648.0, 1.5e-45, 3.4028234663852886e38};
  std::vector<Cell> cells;
  for (size_t i = 0; i < values.size(); ++i)
    cells.push_back(Cell{static_cast<uint32_t>(i * 3), i % 4 == 0 ? static_cast<uint32_t>(i) : kNone,
                         values[i]});
  expect_round_trip(cells);
}

TEST(IntervalCells, SlotsInAnyOrderAndAtTheExtremesRoundTrip) {
  std::vector<Cell> cells = {{kNone - 1, kNone, 1}, {0, 0, 2}, {kNone - 1, kNone - 1, 3},
                             {7, kNone, 4}, {6, 5, 5}, {6, kNone, 6}};
  expect_round_trip(cells);
  expect_round_trip(std::vector<Cell>{});
}

TEST(IntervalCells, AFleetIntervalPacksToAFewBytesPerCell) {
  // Counters' deltas and gauges' small values, slots nearly in order: what a fleet interval is.
  std::vector<Cell> cells;
  for (uint32_t s = 0; s < 100000; ++s)
    cells.push_back(Cell{s ^ (s & 1 ? 2u : 0u), kNone, s % 10 < 7 ? 3.0 * (s % 100 + 1) : s % 100});
  const std::vector<uint8_t> packed = pack_cells(cells);
  EXPECT_LT(packed.size(), cells.size() * 4);  // 16 bytes unpacked
  expect_round_trip(cells);
}

TEST(IntervalCells, BytesItDidNotWriteAreRefused) {
  const std::vector<Cell> two = {{5, kNone, 1.5}, {9, 2, 1e300}};
  const std::vector<uint8_t> good = pack_cells(two);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    std::vector<uint8_t> truncated(good.begin(), good.begin() + static_cast<ptrdiff_t>(cut));
    EXPECT_THROW(unpack_cells(truncated), std::runtime_error) << cut;
  }
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  EXPECT_THROW(unpack_cells(longer), std::runtime_error);
  std::vector<uint8_t> bad_form = {1, 0x03, 0};  // form 3 does not exist
  EXPECT_THROW(unpack_cells(bad_form), std::runtime_error);
  std::vector<uint8_t> negative = {1, 0x08 | 0x00, 0};  // zigzag 1 = slot -1
  EXPECT_THROW(unpack_cells(negative), std::runtime_error);
  std::vector<uint8_t> huge_count = {0xFF, 0xFF, 0xFF, 0xFF, 0x0F};
  EXPECT_THROW(unpack_cells(huge_count), std::runtime_error);
}

}  // namespace
}  // namespace statherd::server
