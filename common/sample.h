// The sample model shared by agent and server (see ../shared/DESIGN.md "Data model").
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/sketch.h"

namespace statherd {

enum class Kind : uint8_t { Counter = 1, Gauge = 2, Distribution = 3, Text = 4 };

const char* kind_name(Kind k);

// Tags are kept sorted by key; keys are unique.
using Tags = std::vector<std::pair<std::string, std::string>>;

// Who produced a sample. A reused pid with another start time is another source.
struct SourceIdentity {
  std::string host;
  std::string app;
  int64_t pid = -1;            // -1: unknown (e.g. an HTTP endpoint)
  int64_t start_time_ms = 0;   // process start, wall clock ms (from /proc); 0: unknown
  std::string path;            // file path or URL the samples came from

  // A stable key: host \0 app \0 pid \0 start \0 path.
  std::string key() const;
  bool operator==(const SourceIdentity&) const = default;
};

// A distribution value: either a mergeable sketch, Prometheus-style buckets, or a summary
// that the source computed itself (quantiles over its own reservoir: not mergeable).
struct Distribution {
  enum class Form : uint8_t { Sketch = 1, Buckets = 2, Summary = 3 };
  Form form = Form::Sketch;
  Sketch sketch;                                   // Form::Sketch
  std::vector<double> bucket_upper_bounds;         // Form::Buckets: ascending, last may be +Inf
  std::vector<double> bucket_counts;               // Form::Buckets: non-cumulative counts
  double count = 0;                                // Buckets and Summary
  double sum = 0;                                  // Buckets and Summary (0 if sum_unknown)
  // Buckets and Summary: the source's sum is not known (a prometheus_client _sum that went NaN
  // or +-Inf after one such observation; a Scales PMF, whose mean lags its count). Count,
  // buckets and quantiles still hold; the server emits no interval sum/mean and its exported
  // _sum total does not move. Wire: bit 7 of the form byte (docs/FORMAT.md).
  bool sum_unknown = false;
  double min = 0, max = 0;                         // Summary (if known)
  std::vector<std::pair<double, double>> quantiles;  // Summary: (q in [0,1], value)

  // Sets sum, or marks it unknown (sum = 0) when `v` is NaN or +-Inf.
  void set_sum_or_unknown(double v) {
    sum_unknown = !std::isfinite(v);
    sum = sum_unknown ? 0.0 : v;
  }

  bool operator==(const Distribution&) const = default;
};

struct Sample {
  std::string name;   // dotted metric name as the source spells it, e.g. "requests.count"
  Tags tags;
  Kind kind = Kind::Gauge;
  int64_t timestamp_ms = 0;  // when it was read
  double value = 0;          // Counter (cumulative) and Gauge
  std::string text;          // Text
  std::shared_ptr<const Distribution> dist;  // Distribution
  // Counter only: the cumulative value the agent read for this series the scrape before, when
  // it knows it (wire kind 5, docs/FORMAT.md); kNoPrevious otherwise. The server then counts
  // value - previous (a reset when value < previous: value) whatever state it holds itself, so
  // a series moved between servers neither loses nor doubles an increment (docs/CLUSTER.md).
  static constexpr double kNoPrevious = -1.0;
  double previous = kNoPrevious;
  bool has_previous() const { return previous >= 0; }

  bool operator==(const Sample& o) const;
};

// All samples read from one source identity in one scrape.
struct SourceSamples {
  SourceIdentity id;
  // The source appeared while the agent was watching (started since the previous scan), so the
  // server counts its counters' whole value on first sighting instead of baselining them.
  bool fresh = false;
  // id.start_time_ms is not the process start but the stat file's birth time: the process died
  // before this agent could learn its start (an mmstats v1 file has none). The server then
  // continues the process it knows for that pid and path, or counts whole a file born after
  // the agent's previous applied read.
  bool start_is_file_birth = false;
  std::vector<Sample> samples;
  // Or, from decode_batch_lazy() (common/wire.h): the samples still encoded, validated,
  // `encoded_count` of them in `encoded` (bytes its Batch owns); for_each_sample() reads both.
  std::string_view encoded;
  uint64_t encoded_count = 0;
};

// A source that could not be read this scrape.
struct SourceError {
  std::string source;   // path or URL
  std::string message;
};

}  // namespace statherd
