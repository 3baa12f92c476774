// The in-memory store: the history of every Graphite path in downsampled tiers written in
// Graphite's retention syntax (server/retention.h; default 10s:6h,5m:7d), compressed in
// Gorilla chunks grown as points arrive (server/history_series.h, server/history_tier.h),
// served with the JSON shapes of Graphite's /render and /metrics/find APIs. One more sink: it
// consumes the rollup's records, named as the Graphite sink names them
// (server/sinks/graphite_naming.h). Paths live in a compact index (server/path_index.h)
// sorted for find's prefix scans; per series key a cache holds each stat's index id, so a
// steady interval neither builds nor looks up a path (ids are renumbered when expiry
// compacts the index).
// Not thread-safe but for path_count()/refused_paths(): the HTTP server feeds and queries it
// from its one read thread (server/http_server.cpp), never from the ingest (io) thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "server/block_vector.h"
#include "server/graphite_pattern.h"
#include "server/graphite_tags.h"
#include "server/graphite_time.h"
#include "server/history_series.h"
#include "server/path_index.h"
#include "server/read_limits.h"
#include "server/render/series.h"
#include "server/sinks/graphite_naming.h"
#include "server/sinks/series_cache.h"
#include "server/sinks/sink.h"

namespace statherd::server {

// The store's tiers, finest first, checked by resolve_retention(); a precision of 0 is the
// interval. Empty: default_retention() of the interval of the first emit.
struct MemoryRetention {
  MemoryRetention() = default;
  // The single-duration form: one tier at the interval keeping this long.
  MemoryRetention(std::chrono::seconds single) : tiers{{0, single.count()}} {}  // NOLINT
  MemoryRetention(std::vector<RetentionTier> t) : tiers(std::move(t)) {}        // NOLINT
  std::vector<RetentionTier> tiers;
};

struct MemoryStoreOptions {
  MemoryRetention retention;
  uint64_t max_paths = 1'000'000;  // new paths beyond this are refused and counted
  std::string prefix = "statherd"; // Graphite prefix, as the graphite sink uses it
  bool tags = false;  // sample tags as ";k=v" (graphite.tags), as the graphite sink names them
};

// What the store holds (the memory-store bench and tests read it).
struct MemoryStoreStats {
  uint64_t paths = 0, points = 0;
  uint64_t series_bytes = 0;  // chunks, chunk headers, tier state
  uint64_t index_bytes = 0;   // paths' bytes, hash, sorted order, per-path vector slots
};


// Graphite's default consolidation (consolidateBy avg) for maxDataPoints: when `points`
// ([[value|null, ts], ...]) holds more than `max_points`, consecutive runs of
// ceil(n / max_points) points become one point: the average of its non-null values (null if
// all are null) at the timestamp of the run's first point. max_points 0: unchanged.
nlohmann::json consolidate_datapoints(const nlohmann::json& points, size_t max_points);

class MemoryStore : public Sink {
 public:
  explicit MemoryStore(MemoryStoreOptions options);

  std::string name() const override { return "memory"; }
  // Stores every point (a re-emitted interval overwrites its point, in every tier) and forgets
  // what each tier's retention has passed; a path once nothing of it is left.
  void emit(const IntervalOutput& out) override;

  // /metrics/find: [{"text","id","leaf","expandable","allowChildren"}], one per distinct node.
  nlohmann::json find(std::string_view query) const;
  // /render: [{"target": PATH, "datapoints": [[VALUE|null, TS], ...]}] for every path matching
  // any target; one datapoint per step in [from_s, until_s], consolidated to at most
  // max_data_points (0: no limit) by consolidate_datapoints(). As Whisper, the step is the
  // finest tier whose retention covers from_s (from_s >= now - retention; now is the newest
  // interval stored), else the coarsest's, and nothing older than that tier's retention.
  nlohmann::json render(const std::vector<std::string>& targets, int64_t from_s,
                        int64_t until_s, size_t max_data_points = 0) const;

  // The same, bounded by `limits` (the HTTP API's): an error (a 413 for the caller) as soon as
  // the answer would hold more than max_paths series / nodes or max_points datapoints, or the
  // scan would take more than max_match_steps comparisons; nothing big is built before.
  Result<nlohmann::json> render(const std::vector<GraphitePattern>& targets, int64_t from_s,
                                int64_t until_s, size_t max_data_points,
                                const ReadLimits& limits) const;
  Result<nlohmann::json> find(const GraphitePattern& query, const ReadLimits& limits) const;

  // graphite-web's tag database over the stored paths (server/graphite_tags.h), answered
  // from an index of tag -> value -> paths made on the first tag read after the set of
  // paths changed (a new path, or expiry dropping some): one walk of every path then.
  // /tags/findSeries and seriesByTag(): the matching paths, sorted. The paths checked are
  // those having a value one expression requires (the fewest such), else every path; an
  // error (a 413) once `steps` (below) run out or past max_results matches.
  Result<std::vector<std::string>> find_tagged(const TagQuery& query, uint64_t& steps,
                                               size_t max_results) const;
  // The same walk, calling fn(path, tags) for each match until it returns false. `steps`:
  // the request's budget (a value checked costs 1, a path checked 1 per expression), what is
  // left of it after; past it an error (a 413).
  Status for_each_tagged(const TagQuery& query, uint64_t& steps,
                         const std::function<bool(std::string_view, const TagMap&)>& fn) const;
  // /tags: the tags of every path, sorted, those matching `filter` (null: all), at most
  // `limit` (0: no limit).
  std::vector<std::string> tag_names(const TagFilter* filter, size_t limit) const;
  // /tags/<tag>: the values of `tag` with how many paths have each, sorted by value.
  struct TagValueCount {
    std::string value;
    uint64_t count = 0;
  };
  // nullopt: no path has the tag.
  std::optional<std::vector<TagValueCount>> tag_values(const std::string& tag,
                                                       const TagFilter* filter,
                                                       size_t limit) const;

  // Every stored path but the tagged ones, sorted (graphite-web's /metrics/index.json, which
  // lists those by carbon's hashed _tagged/ file names); an error (a 413) past
  // limits.max_paths. find() and the globs of fetch() leave tagged paths out too.
  Result<std::vector<std::string>> all_paths(const ReadLimits& limits) const;

  // What one /render request may still read, across all its fetches.
  struct FetchBudget {
    uint64_t match_steps = 0, points_read = 0;
    size_t paths = 0;
    // A plain path target's series go to the answer as they are: its points (at most
    // points_cap each, maxDataPoints; 0: no cap) count against answer_points, so a too large
    // answer is refused before anything is built. Off (nullopt) for a function's fetches.
    std::optional<uint64_t> answer_points;
    uint64_t points_cap = 0;
    explicit FetchBudget(const ReadLimits& l)
        : match_steps(l.max_match_steps), points_read(l.max_points_read), paths(l.max_paths) {}
  };
  // The series of every stored path matching `pattern`, sorted by path, as graphite-web reads
  // them from Whisper files: `until` clamped to now_s, `from` to now_s minus the longest
  // retention (no series when from_s > now_s or until_s is older than that); the tier is the
  // finest whose retention covers now_s - from_s, else the coarsest; values from the first
  // step start after `from` to the step start at or before `until`, NaN where none is stored.
  // Each series' path_expression is `expression`. An error (a 413) once the budget is spent.
  Result<std::vector<render::Series>> fetch(const GraphitePattern& pattern,
                                            const std::string& expression, int64_t from_s,
                                            int64_t until_s, int64_t now_s,
                                            FetchBudget& budget) const;

  // seriesByTag(): the same for the paths whose tags match `query` (find_tagged's walk, with
  // the budget's match_steps), each with path_expression `expression` (the call as written).
  Result<std::vector<render::Series>> fetch_tagged(const TagQuery& query,
                                                   const std::string& expression, int64_t from_s,
                                                   int64_t until_s, int64_t now_s,
                                                   FetchBudget& budget) const;

  // Thread-safe.
  uint64_t path_count() const { return path_count_.load(std::memory_order_relaxed); }
  uint64_t refused_paths() const { return refused_paths_.load(std::memory_order_relaxed); }
  // Not thread-safe (walks every path).
  MemoryStoreStats stats() const;
  // The tiers in use ("10s:6h,5m:7d"); empty before the first emit.
  std::string tiers_text() const;

 private:
  void plan_tiers(int64_t interval_s);
  // A record's series in the store: per stat seen, its PathIndex id.
  struct CachedSeries {
    struct Slot {
      uint32_t stat;  // GraphiteStatNames id
      uint32_t id;    // PathIndex id
    };
    std::vector<Slot> slots;
  };
  void store_record(const IntervalOutput& out, const RollupRecord& record, int64_t ts);
  // The index id of the record's stat `name` (kNone: refused, max_paths reached).
  uint32_t id_for(CachedSeries& cached, const RollupRecord& record, size_t index,
                  std::string_view name, std::optional<GraphiteSeriesPath>& path);
  void expire(int64_t now);
  // The visible tier a query from `from_s` reads (index into plan_).
  size_t tier_for(int64_t from_s) const;
  nlohmann::json datapoints(const HistorySeries& series, size_t tier, int64_t from_s,
                            int64_t until_s, size_t max_data_points) const;
  size_t point_count(size_t tier, int64_t from_s, int64_t until_s,
                     size_t max_data_points) const;
  // Calls fn(path, series) for each stored path under the pattern's literal prefix; false (and
  // stops) once `steps` (decreased by the pattern's alternatives per path) would go below 0.
  template <class Fn>
  bool scan(const GraphitePattern& pattern, uint64_t& steps, Fn&& fn) const;
  // fetch()'s work for the paths `walk` gives: walk(take) calls take(path, series, tags or
  // null) per candidate until it returns false, and returns its own error, if any. `what`
  // names the request in errors.
  template <class Walk>
  Result<std::vector<render::Series>> fetch_with(const std::string& what,
                                                 const std::string& expression, int64_t from_s,
                                                 int64_t until_s, int64_t now_s,
                                                 FetchBudget& budget, Walk&& walk) const;
  // The tag index (tag -> value -> path ids in path order), remade when paths_generation_
  // moved since it was made. Read-thread only, as the rest.
  struct TagIndex {
    uint64_t generation = UINT64_MAX;
    std::map<std::string, std::map<std::string, std::vector<uint32_t>>> postings;
  };
  const TagIndex& tag_index() const;

  MemoryStoreOptions options_;
  // plan_[0] is a hidden tier at the interval when the first configured tier is coarser than
  // the interval (its buckets need the interval's points, re-emissions included); kept for
  // max(2 precisions, 15 min) and never read by a query.
  std::vector<RetentionTier> plan_;
  size_t first_visible_ = 0;
  PathIndex index_;
  // By PathIndex id; in blocks, as a std::vector's doubling left up to half of it unused (and
  // copied every element at each step) at a million paths.
  BlockVector<HistorySeries, 10> series_;
  GraphiteStatNames stat_names_;
  SeriesCache<CachedSeries> cache_;    // by SeriesKey::id
  std::atomic<uint64_t> refused_paths_{0}, path_count_{0};
  uint64_t paths_generation_ = 0;  // moves when a path is added or expiry drops some
  mutable TagIndex tag_index_;
  int64_t newest_ts_ = INT64_MIN;
  int64_t last_expire_ts_ = INT64_MIN;
};

}  // namespace statherd::server
