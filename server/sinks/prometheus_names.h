// Prometheus naming of rollup records, shared by GET /metrics (PrometheusSink) and remote_write
// (RemoteWriteSink) so both publish the same names, labels and kinds.
//
// Names: `statherd_<metric>_<stat>`; every character outside [a-zA-Z0-9_:] becomes '_'. Labels:
// `level`, `app`, `host` (host and process levels), `pid` (process level), then the tags (keys
// sanitized, reserved ones prefixed "tag_"). What a stat becomes follows the record's kind
// (RollupRecord::kind), never its name alone: prometheus_target().
#pragma once

#include <prometheus/labels.h>

#include <optional>
#include <string>
#include <string_view>

#include "server/rollup_record.h"

namespace statherd::server {

// "statherd_" + metric + "_" + stat, every char outside [a-zA-Z0-9_:] replaced by '_'.
std::string prometheus_metric_name(std::string_view metric, std::string_view stat);
// A tag key as a label name: [a-zA-Z_][a-zA-Z0-9_]*, reserved names prefixed with "tag_".
std::string prometheus_label_name(std::string_view key);
// "p50" -> 0.5, "p999" -> 0.999, "p9999" -> 0.9999; nullopt for anything else ("p99_max").
std::optional<double> quantile_of_stat(std::string_view stat);
// The labels of a series: level, app, host, pid and its tags.
prometheus::Labels prometheus_series_labels(const SeriesKey& key);
// One string naming a series of `family` by its labels: the family, then per label in name
// order '\x1f' name '=' value. Two keys whose labels are the same (tags that sanitize alike)
// give the same string. Built without the std::map of prometheus_series_labels (a fleet's
// first interval makes hundreds of thousands).
std::string prometheus_series_id(std::string_view family, const SeriesKey& key);
// "statherd rollup of '<metric>': <what>", the HELP text of a family.
std::string prometheus_help(std::string_view metric, std::string_view what);

// What one stat of a record feeds.
enum class PromRole : uint8_t {
  CounterTotal,  // Counter's "count": counter `statherd_<m>_count_total`
  Gauge,         // a gauge `statherd_<m>_<stat>` ("sum" spelled "summed")
  SummaryCount,  // Distribution's "count": the summary's _count
  SummarySum,    // Distribution's "sum": the summary's _sum
  Quantile,      // Distribution's pNN: a quantile of the summary
};
struct PromTarget {
  PromRole role = PromRole::Gauge;
  std::string family;  // CounterTotal and Gauge: the family's name; else empty (the summary's)
  double quantile = 0;  // Quantile
};
PromTarget prometheus_target(SeriesKind kind, std::string_view metric, std::string_view stat);

}  // namespace statherd::server
