// PrometheusSink: the latest value of every rolled-up series, served as Prometheus text
// exposition 0.0.4 on GET /metrics. Built on prometheus-cpp's core (Registry, Family<Counter>,
// Family<Gauge>, MetricFamily, TextSerializer); no transport here, the server's own Beast
// listener serves scrape().
//
// Names: `statherd_<metric>_<stat>`; every character outside [a-zA-Z0-9_:] becomes '_' (dots,
// dashes, spaces, ...), so "db.query-time" / "p99" -> "statherd_db_query_time_p99". The
// "statherd_" prefix guarantees a valid first character. Different metrics that sanitize to the
// same name share a family (same labels: last writer wins); a name already taken by another
// metric type is refused and counted (type_conflicts), and so is a name a summary writes
// (`<summary>_count`, `<summary>_sum`, e.g. a distribution "d.count" next to "d").
//
// Labels: `level` ("host", "app" or "process"), `app`, `host` (host and process levels only),
// `pid` (process level only), then the sample's tags. The app level is the sum over hosts, so
// every series carries `level`: always select one, e.g.
//   sum by (app) (rate(statherd_requests_count_total{level="host"}[1m]))
// equals rate(statherd_requests_count_total{level="app"}[1m]); a sum() without a level matcher
// counts everything twice. Tag keys are sanitized to [a-zA-Z_][a-zA-Z0-9_]*; a key that would
// shadow level/app/host/pid/quantile or starts with "__" gets a "tag_" prefix. Label values are
// kept as they are: the serializer escapes '\\', '"' and newlines.
//
// Kinds: RollupRecord::kind says what a series is (the stat names are not consulted for it).
// - Counter: `count` -> Prometheus counter `statherd_<m>_count_total`, the engine's running
//   total of the series (RollupRecord::count_total: engine state, so it continues across server
//   restarts; monotonic: rate() and increase() work); `rate`, `m1_rate`, `m5_rate`, `m15_rate`
//   and any other stat -> gauges. A record without a total (NaN: not from the engine) adds its
//   interval's count instead (a re-emitted interval adds only its difference).
// - Distribution: a Prometheus **summary** `statherd_<m>` with quantile labels from p50, p75,
//   p90, p95, p99, p999 (of the last interval), and `_sum` and `_count` the engine's running
//   totals of the observations (count_total / sum_total; like the counters' totals: monotone
//   fleet totals that continue across server restarts; sum_total NaN: the interval's sum is
//   unknown, `_sum` stays where it was). Why a summary, not a histogram: the server already
//   merges sketches exactly across processes and hosts, and a sketch has no fixed buckets a
//   histogram could expose without re-bucketing (lossy) or hundreds of bucket series; the
//   summary publishes the accurate merged quantiles at each level. min, max, mean and the
//   approximate pNN_max / pNN_avg (Scales PMF sources) -> gauges `statherd_<m>_<stat>`.
// - Gauge: every stat (min, max, mean, p50, ...) -> a gauge; the stat `sum` becomes
//   `statherd_<m>_summed` (a `_sum` suffix belongs to summaries and histograms).
// Naming is shared with remote_write: server/sinks/prometheus_names.h.
//
// Per-series cache: per SeriesKey::id and stat the Series it feeds is remembered (labels and
// family names are built only to find or make a Series), so a steady interval builds no strings
// and looks up no map per stat (one hash lookup per record). A Series remembers the key ids that cache it and
// its removal (expiry) clears those entries; a refused series (max_series) or a type conflict
// is not cached (retried, and counted, every interval: without a lookup while no series has
// been removed since, as nothing can have changed); a key not seen for `expire_intervals`
// intervals leaves the cache.
//
// Expiry and memory: a series not updated for `expire_intervals` intervals is removed (the
// engine stops emitting a series after its idle timeout). At most `max_series` series; new
// ones beyond are refused and counted. Thread-safe (one mutex): emit() and scrape() may run on
// different threads. The text of every series is rendered once per emit() and shared by the
// scrapes until the next one (shared_text()); the mutex is held only to copy the series, not
// while serializing, so emit() on the io thread never waits for a whole serialization.
#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/labels.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "server/id_index.h"
#include "server/sinks/prometheus_names.h"
#include "server/sinks/series_cache.h"
#include "server/sinks/sink.h"

namespace statherd::server {

struct PrometheusSinkOptions {
  uint64_t max_series = 200'000;  // Prometheus series (one label set of one name)
  int64_t expire_intervals = 3;   // removed after this many intervals without an update
  size_t reemit_window = 32;      // intervals per counter whose counts are remembered
};

class PrometheusSink : public Sink {
 public:
  struct Counters {
    uint64_t series = 0;             // live Prometheus series
    uint64_t series_rejected = 0;    // new series refused: max_series reached
    uint64_t series_expired = 0;
    uint64_t type_conflicts = 0;     // points whose name is taken by another metric type
    uint64_t reemit_untracked = 0;   // re-emitted counts older than reemit_window: not added
  };

  explicit PrometheusSink(PrometheusSinkOptions options = {});
  ~PrometheusSink() override;

  std::string name() const override { return "prometheus"; }
  void emit(const IntervalOutput& out) override;

  // Every live series as metric families (sorted by name), plus `extra` (self-metrics).
  std::vector<prometheus::MetricFamily> collect() const;
  // Text exposition 0.0.4 of collect() and `extra`.
  std::string scrape(const std::vector<prometheus::MetricFamily>& extra = {}) const;
  // Text exposition 0.0.4 of collect(), rendered at most once per emit(): every scrape between
  // two emits gets (and holds) the same immutable text.
  std::shared_ptr<const std::string> shared_text() const;
  Counters counters() const;

 private:
  enum class Kind : uint8_t { Counter, Gauge, Summary };
  struct Series;
  // One stat name of a key: what it feeds, and the Series once found (nullptr: not yet, refused,
  // a type conflict, or removed since).
  // Small on purpose (one per stat of every key): the family name and the labels are built
  // again only when a Series has to be found or made.
  // 24 bytes: a 400k-series fleet has ~2M of them (issue #10). A quantile's value follows
  // from its stat: stat_quantiles_[stat].
  struct Slot {
    uint32_t stat = 0;  // the stat's name: stat_names_[stat]
    PromRole role = PromRole::Gauge;
    bool conflict = false;
    Series* series = nullptr;
    // Refused (max_series) or a type conflict when removals_ was this: until a series is
    // removed neither can change, so the refusal is counted again without a lookup.
    uint64_t refused_at = UINT64_MAX;
  };
  static_assert(sizeof(Slot) == 24);
  struct KeyCache {
    SeriesKeyRef key;
    SeriesKind kind = SeriesKind::Gauge;
    std::vector<Slot> slots;  // in the order the key's records list their stats
    Slot summary;             // Distribution: the summary `statherd_<m>`
    int64_t last_start_s = INT64_MIN;  // newest interval (not re-emitted) that had the key
  };
  // The slot of stat `stat` (at `index` in the record's list, usually) of c, made when new.
  Slot& slot_of(KeyCache& c, size_t index, std::string_view stat);
  uint32_t stat_id(std::string_view stat);

  void emit_record(const RollupRecord& r, const IntervalOutput& out);
  KeyCache& cache_for(const RollupRecord& r);
  // The cached Series of `slot`, or find_or_add() (cached when it succeeds).
  Series* resolve(KeyCache& c, Slot& slot, Kind kind, std::string_view help_what);
  // help_metric/help_what make the family's HELP text, built only when the family is new.
  bool clashes_with_a_summary(const std::string& family, Kind kind) const;
  // The labels are the key's (prometheus_series_labels): a new Series keeps the key and builds
  // them again at collect(), not a copy of them per series.
  Series* find_or_add(Kind kind, const std::string& family, std::string_view help_metric,
                      std::string_view help_what, const SeriesKeyRef& key);
  void add_count(Series& s, int64_t start_s, double count, double sum, bool reemit);
  void set_total(Series& s, int64_t start_s, double count, double sum);
  // Raises s.last_start_s to start_s and lists s under it for expire().
  void touch(Series& s, int64_t start_s);
  void expire(int64_t newest_start_s, int64_t interval_s);
  void remove(const Series& s);
  std::vector<prometheus::MetricFamily> collect_locked() const;

  PrometheusSinkOptions options_;
  mutable std::mutex mutex_;
  struct Family {
    Kind kind = Kind::Gauge;
    std::string help;
    std::vector<uint32_t> members;  // its live series' ids: removed with its last one
  };
  using Families = std::map<std::string, Family>;  // by name; clashes_with_a_summary() reads it
  Families families_;
  // Series by id (stable addresses; a removed one's id is reused), found by family + labels
  // through index_, which keeps no copy of that text: it is rebuilt from the series' key on
  // a hash match. Per series ~80 bytes (the 64-byte Series, its pointer, its index entry and
  // family member); a std::map by the text took ~350.
  std::vector<std::unique_ptr<Series>> series_;
  std::vector<uint32_t> free_ids_;
  IdIndex index_;
  std::string index_key(const Series& s) const;  // family + labels
  // By SeriesKey::id; expire() drops the idle ones (not the cache's own idle sweep).
  SeriesCache<KeyCache> cache_;
  // expire() looks only at the oldest starts: series and keys by a start they were updated at.
  std::map<int64_t, std::vector<Series*>> series_by_start_;
  std::map<int64_t, std::vector<uint64_t>> keys_by_start_;
  // The lists of the newest start touched (an emit lists every series and key under its
  // start: one map lookup per emit, not per record).
  std::vector<Series*>& series_at(int64_t start_s);
  std::vector<uint64_t>& keys_at(int64_t start_s);
  int64_t series_at_start_ = INT64_MIN, keys_at_start_ = INT64_MIN;
  std::vector<Series*>* series_at_ = nullptr;
  std::vector<uint64_t>* keys_at_ = nullptr;
  // The buffers of the lists expire() dropped last, for the next start's lists (which are
  // made as big as the newest list before them): an interval's list is neither grown by
  // doubling (~1.5x its size on average, copied at every step) nor a fresh allocation.
  std::vector<Series*> spare_series_;
  std::vector<uint64_t> spare_keys_;
  std::vector<std::pair<double, double>> quantiles_;        // emit_record()'s scratch
  // Every stat name seen (a few dozen): slots hold an index, not a string each.
  std::vector<std::string_view> stat_names_;  // as first seen: a Stat's name (never dangles)
  std::vector<double> stat_quantiles_;  // by stat id: the quantile of a pNN stat, else 0
  std::unordered_map<std::string, uint32_t> stat_ids_;
  Counters counters_;
  mutable std::mutex counters_mutex_;  // guards published_: counters() never waits for emit()
  Counters published_;
  uint64_t generation_ = 0;  // emits so far
  uint64_t removals_ = 0;    // series removed so far
  mutable std::shared_ptr<const std::string> text_;  // shared_text() of text_generation_
  mutable uint64_t text_generation_ = 0;
};

}  // namespace statherd::server
