// The answer of /render in graphite-web 1.1.8's formats: json (with maxDataPoints
// consolidation aligned as graphite-web aligns it, noNullPoints, jsonp), csv and raw.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "server/render/series.h"
#include "server/time_zone.h"

namespace statherd::server::render {

struct OutputOptions {
  std::optional<size_t> max_data_points;
  bool no_null_points = false;
  std::string jsonp;  // the callback's name; empty: plain JSON
};

// graphite-web's renderViewJson: when maxDataPoints is below a series' point count over the
// whole answer's time range, runs of ceil(points / maxDataPoints) values become one (the
// series' consolidation function), the runs aligned to multiples of their width so that a
// refresh does not shift them. Changes `series` (start, values_per_point).
// `points`: how many datapoints the answer holds.
std::string json_answer(std::vector<Series>& series, const OutputOptions& options, size_t& points);
// format=csv: "name,YYYY-MM-DD HH:MM:SS,value" rows, the times on the zone's clock (tz;
// default UTC), value empty for None.
std::string csv_answer(const std::vector<Series>& series, const TimeZone& zone = TimeZone());
// format=raw: "name,start,end,step|v1,v2,..." lines, None for a missing value.
std::string raw_answer(const std::vector<Series>& series);

}  // namespace statherd::server::render
