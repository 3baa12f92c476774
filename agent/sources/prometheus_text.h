// The Prometheus text exposition format 0.0.4 (what every /metrics endpoint serves by default).
//
// Grammar, one line at a time ('\n' ends a line; a trailing '\r' is dropped; leading blanks are
// skipped; blank lines are ignored):
//   # HELP <metric_name> <docstring>      docstring escapes: \\ and \n
//   # TYPE <metric_name> counter|gauge|histogram|summary|untyped
//   # anything else                       a comment
//   <metric_name>[{<label>="<value>",...}] <value> [<timestamp>]
// metric_name [a-zA-Z_:][a-zA-Z0-9_:]*, label [a-zA-Z_][a-zA-Z0-9_]*, a trailing comma in the
// label set is allowed; label values escape \\, \" and \n (any other escape is an error).
// value: a float, NaN, +Inf, -Inf (case-insensitive, as Go's ParseFloat); timestamp: int64 ms.
// A histogram family x has samples x_bucket{le="..."} (cumulative), x_sum and x_count; a summary
// family x has x{quantile="..."}, x_sum and x_count. A sample with no TYPE line is untyped.
// As Prometheus does, the first malformed line fails the whole exposition; errors name the line.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/sample.h"

namespace statherd::agent {

enum class PromType : uint8_t { Untyped, Counter, Gauge, Histogram, Summary };
const char* prom_type_name(PromType t);

struct PromSample {
  std::string name;  // as written, e.g. "latency_seconds_bucket"
  Tags labels;       // sorted by label name; names unique
  double value = 0;
  std::optional<int64_t> timestamp_ms;
  uint32_t line = 0;  // 1-based line of the exposition
};

struct PromFamily {
  std::string name;
  PromType type = PromType::Untyped;
  std::string help;
  std::vector<PromSample> samples;
};

// Families in the order they first appear.
Result<std::vector<PromFamily>> parse_prometheus_text(std::span<const uint8_t> bytes);

// Families -> statherd samples (all stamped now_ms; exposition timestamps are not used):
//   counter          Counter, cumulative, named as the sample ("requests_total")
//   gauge, untyped   Gauge named as the sample
//   histogram x      one Distribution Form::Buckets named x per label set (le removed): upper
//                    bounds ascending, counts made non-cumulative, count/sum from x_count/x_sum
//                    (count from the +Inf bucket if x_count is missing)
//   summary x        one Distribution Form::Summary named x per label set (quantile removed):
//                    count, sum, quantiles; min/max NaN (unknown)
// Labels become tags, sorted by name. A bad le/quantile label is an Error naming its line.
Result<std::vector<Sample>> prometheus_samples(const std::vector<PromFamily>& families,
                                               int64_t now_ms);

}  // namespace statherd::agent
