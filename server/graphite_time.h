// Graphite's from/until times for /render.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/result.h"
#include "server/time_zone.h"

namespace statherd::server {

// A Graphite time as graphite-web 1.1.8's parseATTime reads it, in `zone` (/render's tz;
// default UTC): unix seconds (8
// digits that form a date are YYYYMMDD), or a reference (now, a time of day HH:MM, 9am,
// noon, midnight, teatime; then a day: today, yesterday, tomorrow, MM/DD/YY[YY], YYYYMMDD,
// a month name and day, a weekday; "HH:MM_YYYYMMDD" too) followed by an optional +/- offset
// ("now-10min", "-1h", "midnight+2h", "yesterday"). Returns unix seconds; out of range or
// unknown: an error, never an overflow.
Result<int64_t> parse_graphite_time(std::string_view text, int64_t now_s,
                                    const TimeZone& zone = TimeZone());

// graphite-web's parseTimeOffset: "+1h", "-10min", "2d", "1h30min" (units by their first
// letters: s, min, h, d, w, mon = 30 d, y = 365 d) in seconds; "" is 0.
Result<int64_t> parse_graphite_offset(std::string_view text);

}  // namespace statherd::server
