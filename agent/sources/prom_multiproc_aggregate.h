// The aggregation half of the prometheus_client multiprocess source: a table of output series
// that every file's entries are folded into, with the same rules as prometheus_client's
// MultiProcessCollector._accumulate_metrics:
//   counter, summary, other types: summed over files, per (sample, labels)
//   gauge all/liveall: one series per (sample, labels, pid), pid label added
//   gauge min/livemin, max/livemax: the first value seen, replaced by a smaller/larger one (so a
//     NaN is kept only if it comes first, as in Python's comparisons)
//   gauge sum/livesum: summed
//   gauge mostrecent/livemostrecent: the value with the largest timestamp > 0 (absent if every
//     timestamp is 0, as prometheus_client's defaultdict(float) start makes it)
//   histogram: `le` buckets summed per bound over files; count = sum of the buckets; `_sum`
//     summed; other non-`le` samples except `_count` become summed "other" series.
// "live" modes are not checked against /proc: like prometheus_client, a live gauge counts while
// its file exists (mark_process_dead deletes it).
// Private to agent/sources/prom_multiproc*.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/sources/prom_multiproc.h"

namespace statherd::agent {

// Where one entry's value goes.
struct PromEntryTarget {
  static constexpr int32_t kValue = -1, kSum = -2, kCount = -3, kIgnore = -4;
  uint32_t series = 0;
  int32_t part = kValue;  // kValue/kSum/kCount/kIgnore, or >= 0: a histogram bucket id
};

class PromSeriesTable {
 public:
  // The target of an entry with JSON key `json` in a file named `file`. Keys are parsed once
  // per table (cached by type, mode and key; all/liveall gauges also by pid).
  Result<PromEntryTarget> resolve(const PromDbFileName& file, std::string_view json);

  // Starts a collection: every series back to its retired base (see retire()).
  void begin_collection();
  // Folds one value (and its timestamp, 0 if none) into its series.
  void apply(const PromEntryTarget& t, double value, double timestamp) {
    if (t.part == PromEntryTarget::kIgnore) return;
    Series& s = series_[t.series];
    if (t.part >= 0) s.counts[static_cast<size_t>(t.part)] += value;
    else if (t.part == PromEntryTarget::kValue) apply_value(s, value, timestamp);
    else if (t.part == PromEntryTarget::kSum) s.sum += value;
    else if (t.part == PromEntryTarget::kCount) s.count += value;
    s.seen = true;
  }
  // A deleted file's last values stay in the cumulative series (counter, histogram, summary,
  // other) for the life of the table, so a total never goes backwards; gauges drop them.
  void retire(const PromEntryTarget& t, double value);
  // Appends one sample per series that has a value.
  void emit(int64_t now_ms, std::vector<Sample>& out) const;
  size_t size() const { return series_.size(); }

 private:
  enum class Op : uint8_t { Counter, Other, GaugeSet, GaugeMin, GaugeMax, GaugeSum,
                            GaugeMostRecent, Histogram, Summary };
  struct Series {
    std::string name;
    Tags tags;
    Op op = Op::Counter;
    bool seen = false;
    double value = 0, timestamp = 0, sum = 0, count = 0;
    std::vector<double> bounds;  // histogram: by bucket id (order of first sighting)
    std::vector<double> counts;  // histogram: by bucket id
    // The retired base (deleted files' last values) that each collection starts from.
    bool retired = false;
    double retired_value = 0, retired_sum = 0, retired_count = 0;
    std::vector<double> retired_counts;
  };

  static void apply_value(Series& s, double v, double ts);
  uint32_t series_for(std::string key, std::string name, Tags tags, Op op);
  PromEntryTarget target_for(const PromDbFileName& file, const PromDbKey& key);
  PromEntryTarget histogram_target(const PromDbKey& key);
  void emit_histogram(const Series& s, int64_t now_ms, std::vector<Sample>& out) const;

  std::vector<Series> series_;
  std::unordered_map<std::string, uint32_t> index_;         // series key -> series
  std::unordered_map<std::string, PromEntryTarget> cache_;  // type/mode[/pid]/json -> target
  std::string scratch_;
};

}  // namespace statherd::agent
