// Graphite's from/until times for /render.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/result.h"

namespace statherd::server {

// A Graphite time: "now", relative "-10min", "-1h", "-30s", "-2d", "-1w" (also "-5minutes",
// "-2hours", ...), absolute unix seconds, or Graphite's absolute "HH:MM_YYYYMMDD" and
// "YYYYMMDD" (midnight) forms, read as UTC. As in Graphite, 8 digits that form a valid date
// (year >= 1900) are YYYYMMDD, other digit strings are unix seconds. Returns unix seconds.
Result<int64_t> parse_graphite_time(std::string_view text, int64_t now_s);

}  // namespace statherd::server
