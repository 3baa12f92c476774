// A double as its shortest round-trip text (what std::to_chars(first, last, value) writes),
// quicker for the values metrics mostly carry: a whole number of magnitude below 100000 is
// written as an integer, which std::to_chars spells the same way (from 100000 on it may choose
// the exponent form, "1e+05"). -0.0 keeps its sign through the general path.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>

namespace statherd {

// Writes into [first, first + 32) (enough for every double); returns one past the end.
inline char* write_shortest(char* first, double value) {
  if (value > -100000.0 && value < 100000.0) {
    const auto whole = static_cast<int32_t>(value);
    if (static_cast<double>(whole) == value && !(whole == 0 && std::signbit(value)))
      return std::to_chars(first, first + 32, whole).ptr;
  }
  return std::to_chars(first, first + 32, value).ptr;
}

}  // namespace statherd
