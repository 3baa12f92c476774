// RwSeriesBuilder: one interval's rollup records as remote-write series, named, labelled and
// valued as GET /metrics shows them (server/sinks/prometheus_names.h): counters'
// `_count_total`, gauges, and per distribution the summary's quantile series, `_sum` and
// `_count`; one sample each, stamped with the interval start.
//
// Only what the interval emitted is sent: a series the engine did not emit this interval has
// no sample (the /metrics page still shows its last value until it expires). Totals are the
// engine's running totals (RollupRecord::count_total / sum_total), so they continue across
// restarts. A record without a total (NaN: not from the engine, e.g. tests) sends the sum of
// the counts it had in the intervals built here; an unknown sum (no "sum" stat, NaN
// sum_total) sends the last `_sum` sent. Per SeriesKey::id the labels are built once; a key
// not seen for `expire_intervals` intervals leaves the cache (and a total of its own restarts).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/rollup_record.h"
#include "server/sinks/prometheus_names.h"
#include "server/sinks/remote_write_proto.h"

namespace statherd::server {

class RwSeriesBuilder {
 public:
  explicit RwSeriesBuilder(int64_t expire_intervals = 3) : expire_intervals_(expire_intervals) {}

  // Appends the series of every record of `out` (one sample at out.start_s, in ms) to `into`.
  void build(const IntervalOutput& out, std::vector<RwSeries>& into);
  size_t cached_keys() const { return cache_.size(); }

 private:
  struct Slot {
    std::string stat;
    PromRole role = PromRole::Gauge;
    std::vector<RwLabel> labels;  // sorted, __name__ (and quantile) included; empty: not sent
  };
  struct Entry {
    SeriesKind kind = SeriesKind::Gauge;
    std::vector<RwLabel> base;  // level, app, host, pid, tags: sorted
    std::vector<Slot> slots;
    std::vector<RwLabel> count_labels, sum_labels;  // Distribution: `_count`, `_sum`
    double count_total = 0, sum_total = 0;          // records without totals: accumulated
    int64_t last_start_s = INT64_MIN;
  };

  Entry& entry_for(const RollupRecord& r);
  Slot& slot_for(Entry& e, const SeriesKey& key, size_t index, std::string_view stat);
  void add_record(const RollupRecord& r, const IntervalOutput& out, std::vector<RwSeries>& into);

  int64_t expire_intervals_;
  std::unordered_map<uint64_t, Entry> cache_;  // key: SeriesKey::id
};

}  // namespace statherd::server
