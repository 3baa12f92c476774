// Scales HTTP endpoints: GET {url}?format=json (path /status/ when the URL has none) returns the
// process's nested stat tree as JSON (Scales' formats.jsonFormat of its StatContainer tree).
//
// Shapes, as the Scales source (greplin/scales __init__.py, meter.py) writes them:
//   container  {"name": {...}, ...}                       nested; keys joined with '.'
//   leaf       42, 0.5, "text", true                      IntStat, DoubleStat, Stat
//   meter      {"unit": "per second", "count": N}          MeterStatDict before its first tick,
//              + "m1", "m5", "m15" (EWMA rates)            after it (ticked every 5 s)
//   PMF        {"count": N}                                PmfStatDict before 2 values
//              + "min" "max" "mean" "stddev" "median" "75percentile" "95percentile"
//                "98percentile" "99percentile" "999percentile"   (refreshed every 20 s)
// Python's json writes NaN / Infinity / -Infinity for non-finite floats: read as null (skipped).
//
// Mapping to samples:
//   number leaf   gauge, or counter when its dotted name matches a counter pattern
//   bool leaf     gauge 0/1;   string leaf: text;   null and arrays: skipped
//   meter x       counter x.count, gauges x.m1 x.m5 x.m15 (the source's own rates; unit dropped)
//   PMF x         distribution x (Form::Summary): count, sum = mean * count (the mean and
//                 quantiles are refreshed every 20 s, count on every value: sum is approximate),
//                 min, max, quantiles 0.5 0.75 0.95 0.98 0.99 0.999 (over the process's own
//                 reservoir: the server reports them only as pNN_max / pNN_avg)
//   {"count": N} alone (a PMF that has not refreshed yet) is a plain container: gauge x.count.
// Identity: host, app (configured, else the URL's host:port), pid -1 (Scales trees carry no pid),
// start time 0, path = the URL actually fetched.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/sources/http_endpoints.h"
#include "agent/sources/mmstats_v1.h"
#include "agent/sources/source.h"
#include "common/result.h"

namespace statherd::agent {

inline constexpr int kScalesMaxDepth = 64;  // deeper trees are refused (no Scales app nests so)

// Walks a Scales JSON tree (the body of one answer) into samples stamped now_ms.
// Not JSON, a top level that is not an object, or nesting deeper than kScalesMaxDepth: Error.
Result<std::vector<Sample>> scales_tree_samples(std::string_view json_text,
                                                const LabelPatternSet& counter_patterns,
                                                int64_t now_ms);

// The URL fetched for a configured one: path /status/ when none, and format=json added to the
// query unless a format is already there.
Result<HttpUrl> scales_request_url(std::string_view configured_url);

struct ScalesHttpOptions {
  std::vector<std::string> urls;              // "URL" or "APP=URL" (see split_endpoint_spec)
  std::vector<std::string> counter_patterns;  // dotted-name globs; default none (all gauges)
  std::chrono::milliseconds timeout{5'000};   // per request
  size_t max_bytes = kDefaultHttpMaxBodyBytes;
  std::string host;
};

class ScalesHttpSource : public Source {
 public:
  explicit ScalesHttpSource(ScalesHttpOptions options);
  std::string describe() const override;
  std::string kind() const override { return "scales"; }
  bool reads_local_files() const override { return false; }
  // GETs every URL at once; each failure is a SourceError for that URL only.
  void scrape(int64_t now_ms, ScrapeReport& out) override;

 private:
  ScalesHttpOptions options_;
  LabelPatternSet counters_;
  std::vector<HttpEndpoint> endpoints_;
};

}  // namespace statherd::agent
