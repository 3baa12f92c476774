// One stat of one record as a flat value: the form a reader that wants "every (series, stat,
// value)" iterates (engine tests, debugging). Sinks consume RollupRecords (server/rollup_record.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/rollup_record.h"

namespace statherd::server {

struct SeriesPoint {
  Level level = Level::App;
  std::string app;
  std::string host;
  int64_t pid = -1;
  std::string metric;
  Tags tags;
  std::string stat;
  double value = 0;
  // The record's running total: count_total on "count", sum_total on a distribution's "sum".
  std::optional<double> total;
};

// Every stat of every record, record after record.
std::vector<SeriesPoint> flat_points(const IntervalOutput& out);

}  // namespace statherd::server
