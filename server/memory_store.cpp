#include "server/memory_store.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <span>

#include "common/names.h"
#include "common/time_floor.h"

namespace statherd::server {

MemoryStore::MemoryStore(MemoryStoreOptions options) : options_(std::move(options)) {}

void MemoryStore::plan_tiers(int64_t interval_s) {
  std::vector<RetentionTier> tiers = options_.retention.tiers;
  if (tiers.empty()) tiers = default_retention(interval_s);
  for (RetentionTier& t : tiers)
    if (t.precision_s <= 0) t.precision_s = interval_s;
  if (tiers.front().precision_s > interval_s) {
    const int64_t keep = std::max<int64_t>(2 * tiers.front().precision_s, 900);
    tiers.insert(tiers.begin(), RetentionTier{interval_s, keep});
    first_visible_ = 1;
  }
  plan_ = std::move(tiers);
}

void MemoryStore::emit(const IntervalOutput& out) {
  if (plan_.empty()) plan_tiers(std::max<int64_t>(1, out.interval_s));
  newest_ts_ = std::max(newest_ts_, out.start_s);
  const int64_t ts = floor_to(out.start_s, plan_.front().precision_s);
  cache_.begin_emit();
  if (ts >= newest_ts_ - plan_.front().retention_s) {  // else older than the finest retention
    for (const RollupRecord& record : out.records) store_record(out, record, ts);
  }
  cache_.end_emit([](CachedSeries&) {});
  index_.commit();
  expire(newest_ts_);
  path_count_.store(index_.size(), std::memory_order_relaxed);  // once the interval is in
}

void MemoryStore::store_record(const IntervalOutput& out, const RollupRecord& record,
                               int64_t ts) {
  bool made = false;
  CachedSeries& cached = cache_.get(record.key->id, made);
  const std::span<const Stat> stats = out.stats_of(record);
  if (made) cached.slots.reserve(stats.size());
  std::optional<GraphiteSeriesPath> path;  // built only when a stat is new to the cache
  for (size_t i = 0; i < stats.size(); ++i) {
    if (!std::isfinite(stats[i].value)) continue;
    const uint32_t id = id_for(cached, record, i, stats[i].name, path);
    if (id != PathIndex::kNone) series_[id].put(plan_, ts, stats[i].value);
  }
}

uint32_t MemoryStore::id_for(CachedSeries& cached, const RollupRecord& record, size_t index,
                             std::string_view name, std::optional<GraphiteSeriesPath>& path) {
  CachedSeries::Slot* known = nullptr;
  if (index < cached.slots.size() && stat_names_.is(cached.slots[index].stat, name))
    known = &cached.slots[index];
  else
    for (CachedSeries::Slot& slot : cached.slots)
      if (stat_names_.is(slot.stat, name)) {
        known = &slot;
        break;
      }
  // A refused path stays cached as refused: while the store is full it is refused again
  // without building and looking up its name (a 2M-series fleet refuses ~1.4M paths every
  // interval at the default max_paths); once there is room it is looked up and made.
  const bool full_store = index_.size() >= options_.max_paths;
  if (known != nullptr && (known->id != PathIndex::kNone || full_store)) {
    if (known->id == PathIndex::kNone) ++refused_paths_;
    return known->id;
  }
  const uint32_t stat = known != nullptr ? known->stat : stat_names_.intern(name);
  if (!path) path = graphite_series_path(*record.key, options_.prefix, options_.tags);
  const std::string full = path->with_stat(stat_names_.component(stat));
  uint32_t id = index_.find(full);
  if (id == PathIndex::kNone) {
    if (full_store) {
      ++refused_paths_;
      if (known == nullptr) cached.slots.push_back({stat, PathIndex::kNone});
      return PathIndex::kNone;
    }
    id = index_.insert(full);
    ++paths_generation_;
    // The series of a gauge's sum (a level) carries no running total; a distribution's sum
    // (an amount) does: only amounts are summed when downsampled.
    const bool amount = (name == "count" && !std::isnan(record.count_total)) ||
                        (name == "sum" && !std::isnan(record.sum_total));
    series_.emplace_back() = HistorySeries(plan_.size(), downsample_for(name, amount));
  }
  if (known != nullptr) known->id = id;
  else cached.slots.push_back({stat, id});
  return id;
}

void MemoryStore::expire(int64_t now) {
  // A full scan is O(paths): at most once per finest retention / 60.
  int64_t every = std::max<int64_t>(1, plan_[first_visible_].retention_s / 60);
  if (last_expire_ts_ != INT64_MIN && now - last_expire_ts_ < every) return;
  last_expire_ts_ = now;
  std::vector<bool> keep(series_.size(), true);
  bool dropped = false;
  for (size_t id = 0; id < series_.size(); ++id) {
    keep[id] = !series_[id].expire(plan_, now);
    dropped = dropped || !keep[id];
  }
  if (!dropped) return;
  index_.compact(keep);
  ++paths_generation_;
  std::vector<uint32_t> renumber(series_.size(), PathIndex::kNone);
  uint32_t next = 0;
  for (size_t id = 0; id < series_.size(); ++id) {
    if (!keep[id]) continue;
    renumber[id] = next;
    series_[next++] = std::move(series_[id]);
  }
  series_.truncate(next);
  // compact() keeps the survivors' order: the cached ids follow, the expired ones go.
  cache_.for_each([&](CachedSeries& cached) {
    size_t kept = 0;
    for (const CachedSeries::Slot& slot : cached.slots)
      if (slot.id == PathIndex::kNone) cached.slots[kept++] = slot;  // refused: still to make
      else if (renumber[slot.id] != PathIndex::kNone)
        cached.slots[kept++] = {slot.stat, renumber[slot.id]};
    cached.slots.resize(kept);
  });
}

MemoryStoreStats MemoryStore::stats() const {
  MemoryStoreStats s;
  s.paths = index_.size();
  series_.for_each([&](const HistorySeries& series) {
    s.points += series.point_count(plan_.size());
    s.series_bytes += series.memory_bytes(plan_.size());
  });
  s.index_bytes = index_.memory_bytes() + series_.capacity() * sizeof(HistorySeries);
  return s;
}

std::string MemoryStore::tiers_text() const {
  return retention_text(std::vector<RetentionTier>(
      plan_.begin() + static_cast<std::ptrdiff_t>(first_visible_), plan_.end()));
}

nlohmann::json consolidate_datapoints(const nlohmann::json& points, size_t max_points) {
  if (max_points == 0 || points.size() <= max_points) return points;
  size_t per_point = (points.size() + max_points - 1) / max_points;
  nlohmann::json out = nlohmann::json::array();
  for (size_t start = 0; start < points.size(); start += per_point) {
    double sum = 0;
    size_t count = 0;
    for (size_t i = start; i < std::min(points.size(), start + per_point); ++i) {
      if (points[i][0].is_null()) continue;
      sum += points[i][0].get<double>();
      ++count;
    }
    nlohmann::json value = count == 0 ? nlohmann::json(nullptr)
                                      : nlohmann::json(sum / static_cast<double>(count));
    out.push_back({value, points[start][1]});
  }
  return out;
}

namespace {

// A ReadLimits with no practical bound: the unbounded render/find of tests and the web page.
ReadLimits unbounded_limits() {
  ReadLimits l;
  l.max_targets = l.max_pattern_bytes = l.max_brace_depth = SIZE_MAX / 2;
  l.max_alternatives = 4096;
  l.max_paths = SIZE_MAX / 2;
  l.max_match_steps = l.max_points = l.max_answer_bytes = UINT64_MAX / 2;
  l.max_points_read = UINT64_MAX / 2;
  return l;
}

// graphite-web keeps tagged series (a ';' in the path) out of the tree, as carbon stores them
// under _tagged/ by a hash of the name: no glob matches one, and a target naming one is looked
// up as it is written. (seriesByTag() and /tags find them.)
bool tree_match(const GraphitePattern& pattern, std::string_view path) {
  return pattern.matches(path) &&
         (path.find(';') == std::string_view::npos || path == pattern.text());
}

Error too_much(const std::string& what, const std::string& pattern, const std::string& key) {
  return Error{"the answer for '" + pattern.substr(0, 80) + "' would hold more than " + what,
               "narrow the pattern (fewer *), shorten from/until or set maxDataPoints; or raise "
               "reads." + key};
}

}  // namespace

template <class Fn>
bool MemoryStore::scan(const GraphitePattern& pattern, uint64_t& steps, Fn&& fn) const {
  const std::string& literal = pattern.literal_prefix();
  const uint64_t per_path = std::max<uint64_t>(1, pattern.alternatives());
  const std::vector<uint32_t>& sorted = index_.sorted();
  for (size_t i = literal.empty() ? 0 : index_.lower_bound(literal); i < sorted.size(); ++i) {
    std::string_view path = index_.path(sorted[i]);
    if (!literal.empty() && path.substr(0, literal.size()) != literal) break;
    if (steps < per_path) return false;
    steps -= per_path;
    if (!fn(path, series_[sorted[i]])) return true;
  }
  return true;
}

Result<nlohmann::json> MemoryStore::find(const GraphitePattern& query,
                                         const ReadLimits& limits) const {
  nlohmann::json result = nlohmann::json::array();
  std::set<std::string> seen;
  uint64_t steps = limits.max_match_steps;
  bool too_many = false;
  bool scanned = scan(query, steps, [&](std::string_view path, const HistorySeries&) {
    if (path.find(';') != std::string_view::npos) return true;  // not in the tree
    query.for_each_prefix_match(path, [&](size_t id_len, bool leaf) {
      std::string id(path.substr(0, id_len));
      if (too_many || !seen.insert(id + (leaf ? "\x01" : "\x02")).second) return;
      if (result.size() >= limits.max_paths) {
        too_many = true;
        return;
      }
      size_t dot = id.rfind('.');
      result.push_back({{"text", dot == std::string::npos ? id : id.substr(dot + 1)},
                        {"id", id},
                        {"leaf", leaf ? 1 : 0},
                        {"expandable", leaf ? 0 : 1},
                        {"allowChildren", leaf ? 0 : 1}});
    });
    return !too_many;
  });
  if (too_many) return too_much(std::to_string(limits.max_paths) + " nodes", query.text(),
                                "max_paths");
  if (!scanned) return too_much(std::to_string(limits.max_match_steps) + " path comparisons",
                                query.text(), "max_match_steps");
  return result;
}

nlohmann::json MemoryStore::find(std::string_view query) const {
  if (query.empty()) return nlohmann::json::array();
  size_t budget = 4096;
  auto pattern = GraphitePattern::compile(query, unbounded_limits(), budget);
  if (!pattern) return nlohmann::json::array();
  auto nodes = find(*pattern, unbounded_limits());
  return nodes ? std::move(*nodes) : nlohmann::json::array();
}

size_t MemoryStore::tier_for(int64_t from_s) const {
  for (size_t t = first_visible_; t < plan_.size(); ++t)
    if (from_s >= newest_ts_ - plan_[t].retention_s) return t;
  return plan_.size() - 1;
}

size_t MemoryStore::point_count(size_t tier, int64_t from_s, int64_t until_s,
                                size_t max_data_points) const {
  const int64_t step = plan_[tier].precision_s;
  from_s = std::max(from_s, newest_ts_ - plan_[tier].retention_s);
  int64_t first = floor_to(from_s, step) + step, last = floor_to(until_s, step);
  if (last < first) return 0;
  size_t n = static_cast<size_t>((last - first) / step + 1);
  if (max_data_points == 0 || n <= max_data_points) return n;
  size_t per_point = (n + max_data_points - 1) / max_data_points;
  return (n + per_point - 1) / per_point;
}

nlohmann::json MemoryStore::datapoints(const HistorySeries& series, size_t tier, int64_t from_s,
                                       int64_t until_s, size_t max_data_points) const {
  nlohmann::json points = nlohmann::json::array();
  const int64_t step = plan_[tier].precision_s;
  // Whisper's alignment: the first point is the first step start after `from`, the last the
  // step start at or before `until`. Nothing older than the tier's retention is read.
  from_s = std::max(from_s, newest_ts_ - plan_[tier].retention_s);
  int64_t first = floor_to(from_s, step) + step, last = floor_to(until_s, step);
  if (last < first) return points;
  // One slot per step, NaN where no point is (stored values are finite); then runs of
  // per_point slots become one point, the average of their values (consolidate_datapoints()
  // without a JSON value per raw point).
  const size_t n = static_cast<size_t>((last - first) / step + 1);
  std::vector<double> values(n, std::nan(""));
  series.visit(plan_, tier, first, last, [&](int64_t ts, double v) {
    values[static_cast<size_t>((ts - first) / step)] = v;
  });
  size_t per_point = max_data_points == 0 || n <= max_data_points
                         ? 1
                         : (n + max_data_points - 1) / max_data_points;
  for (size_t run = 0; run < n; run += per_point) {
    double sum = 0;
    size_t count = 0;
    for (size_t i = run; i < std::min(n, run + per_point); ++i) {
      if (std::isnan(values[i])) continue;
      sum += values[i];
      ++count;
    }
    nlohmann::json value = count == 0 ? nlohmann::json(nullptr)
                           : per_point == 1 ? nlohmann::json(sum)
                                            : nlohmann::json(sum / static_cast<double>(count));
    points.push_back({value, first + static_cast<int64_t>(run) * step});
  }
  return points;
}

Result<nlohmann::json> MemoryStore::render(const std::vector<GraphitePattern>& targets,
                                           int64_t from_s, int64_t until_s,
                                           size_t max_data_points,
                                           const ReadLimits& limits) const {
  // First the matching paths and the answer's size, then the points: a refusal costs a scan.
  std::vector<std::pair<std::string_view, const HistorySeries*>> matched;
  if (plan_.empty()) return nlohmann::json::array();  // nothing stored yet
  const size_t tier = tier_for(from_s);
  std::set<std::string_view> seen;
  uint64_t steps = limits.max_match_steps, points = 0, points_read = 0;
  for (const GraphitePattern& target : targets) {
    std::optional<Error> refused;
    bool scanned = scan(target, steps, [&](std::string_view path, const HistorySeries& series) {
      if (!tree_match(target, path) || !seen.insert(path).second) return true;
      if (matched.size() >= limits.max_paths) {
        refused = too_much(std::to_string(limits.max_paths) + " series", target.text(),
                           "max_paths");
        return false;
      }
      points += point_count(tier, from_s, until_s, max_data_points);
      points_read += point_count(tier, from_s, until_s, 0);
      if (points_read > limits.max_points_read) {
        refused = Error{"the answer for '" + target.text().substr(0, 80) + "' would need more "
                        "than " + std::to_string(limits.max_points_read) + " datapoints read "
                        "(before maxDataPoints consolidation)",
                        "narrow the pattern (fewer *) or shorten from/until; or raise "
                        "reads.max_points_read"};
        return false;
      }
      if (points > limits.max_points) {
        refused = too_much(std::to_string(limits.max_points) + " datapoints", target.text(),
                           "max_points");
        return false;
      }
      matched.emplace_back(path, &series);
      return true;
    });
    if (refused) return *refused;
    if (!scanned) return too_much(std::to_string(limits.max_match_steps) + " path comparisons",
                                  target.text(), "max_match_steps");
  }
  nlohmann::json result = nlohmann::json::array();
  for (const auto& [path, series] : matched) {
    result.push_back({{"target", path},
                      {"datapoints", datapoints(*series, tier, from_s, until_s, max_data_points)}});
  }
  return result;
}

const MemoryStore::TagIndex& MemoryStore::tag_index() const {
  if (tag_index_.generation == paths_generation_) return tag_index_;
  TagIndex fresh;
  fresh.generation = paths_generation_;
  for (uint32_t id : index_.sorted()) {  // ids in path order: each posting list sorted by path
    auto tags = parse_tagged_path(index_.path(id));
    if (!tags) continue;
    for (auto& [k, v] : *tags) fresh.postings[k][v].push_back(id);
  }
  tag_index_ = std::move(fresh);
  return tag_index_;
}

Status MemoryStore::for_each_tagged(
    const TagQuery& query, uint64_t& steps,
    const std::function<bool(std::string_view, const TagMap&)>& fn) const {
  const TagIndex& index = tag_index();
  // The candidates: the paths having the values one expression requires (the shortest such
  // list), else every path.
  const uint64_t budget = steps;
  auto out_of_steps = [&] {
    return Error{"the tag query would check more than " + std::to_string(budget) +
                     " values and path expressions (what is left of reads.max_match_steps)",
                 "add an expression with an exact value (tag=value), use fewer expressions or "
                 "fewer seriesByTag() calls; or raise reads.max_match_steps"};
  };
  std::vector<const std::vector<uint32_t>*> lists;
  size_t candidates = SIZE_MAX;
  for (const TagQuery::Requirement& r : query.requirements()) {
    auto tag = index.postings.find(r.tag);
    std::vector<const std::vector<uint32_t>*> mine;
    size_t n = 0;
    if (tag != index.postings.end()) {
      for (const auto& [value, ids] : tag->second) {
        if (steps == 0) return out_of_steps();
        --steps;  // a value checked
        if (!r.accepts(value)) continue;
        mine.push_back(&ids);
        n += ids.size();
      }
    }
    if (n < candidates) candidates = n, lists = std::move(mine);
  }
  const uint64_t per_path = std::max<size_t>(1, query.size());  // each expression checked
  bool stopped = false;
  auto visit = [&](uint32_t id) {
    if (steps < per_path) return false;
    steps -= per_path;
    std::string_view path = index_.path(id);
    auto tags = parse_tagged_path(path);
    if (tags && query.matches(*tags) && !fn(path, *tags)) stopped = true;
    return !stopped;
  };
  bool done = true;
  if (candidates == SIZE_MAX) {  // no expression requires a value: every path
    for (uint32_t id : index_.sorted())
      if (!(done = visit(id))) break;
  } else {
    for (const auto* ids : lists) {
      for (uint32_t id : *ids)
        if (!(done = visit(id))) break;
      if (!done) break;
    }
  }
  if (!done && !stopped) return out_of_steps();
  return Ok{};
}

Result<std::vector<std::string>> MemoryStore::find_tagged(const TagQuery& query, uint64_t& steps,
                                                          size_t max_results) const {
  std::vector<std::string> out;
  bool too_many = false;
  auto walked = for_each_tagged(query, steps, [&](std::string_view path, const TagMap&) {
    if (out.size() >= max_results) {
      too_many = true;
      return false;
    }
    out.emplace_back(path);
    return true;
  });
  if (too_many) {
    return Error{"the tag query matches more than " + std::to_string(max_results) +
                     " series (reads.max_paths)",
                 "narrow the expressions (an exact value: tag=value); or raise reads.max_paths"};
  }
  if (!walked) return walked.error();
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> MemoryStore::tag_names(const TagFilter* filter, size_t limit) const {
  std::vector<std::string> out;
  for (const auto& [tag, values] : tag_index().postings) {
    if (filter != nullptr && !filter->matches(tag)) continue;
    if (limit > 0 && out.size() == limit) break;
    out.push_back(tag);
  }
  return out;
}

std::optional<std::vector<MemoryStore::TagValueCount>> MemoryStore::tag_values(
    const std::string& tag, const TagFilter* filter, size_t limit) const {
  std::vector<TagValueCount> out;
  const TagIndex& index = tag_index();
  auto it = index.postings.find(tag);
  if (it == index.postings.end()) return std::nullopt;
  for (const auto& [value, ids] : it->second) {
    if (filter != nullptr && !filter->matches(value)) continue;
    if (limit > 0 && out.size() == limit) break;
    out.push_back({value, ids.size()});
  }
  return out;
}

Result<std::vector<std::string>> MemoryStore::all_paths(const ReadLimits& limits) const {
  const std::vector<uint32_t>& sorted = index_.sorted();
  if (sorted.size() > limits.max_paths) {
    return Error{"the index would list " + std::to_string(sorted.size()) + " paths, more than " +
                     std::to_string(limits.max_paths),
                 "walk the tree with /metrics/find instead; or raise reads.max_paths"};
  }
  std::vector<std::string> out;
  out.reserve(sorted.size());
  for (uint32_t id : sorted) {
    std::string_view path = index_.path(id);
    if (path.find(';') == std::string_view::npos) out.emplace_back(path);  // the tree's only
  }
  return out;
}

template <class Walk>
Result<std::vector<render::Series>> MemoryStore::fetch_with(const std::string& what,
                                                            const std::string& expression,
                                                            int64_t from_s, int64_t until_s,
                                                            int64_t now_s, FetchBudget& budget,
                                                            Walk&& walk) const {
  std::vector<render::Series> out;
  if (plan_.empty() || from_s > until_s) return out;
  const int64_t oldest = now_s - plan_.back().retention_s;
  if (from_s > now_s || until_s < oldest) return out;
  from_s = std::max(from_s, oldest);
  until_s = std::min(until_s, now_s);
  size_t tier = plan_.size() - 1;
  for (size_t t = first_visible_; t < plan_.size(); ++t) {
    if (plan_[t].retention_s >= now_s - from_s) {
      tier = t;
      break;
    }
  }
  const int64_t step = plan_[tier].precision_s;
  const int64_t first = floor_to(from_s, step) + step;
  int64_t end = floor_to(until_s, step) + step;
  if (end == first) end += step;
  const auto n = static_cast<size_t>((end - first) / step);
  std::optional<Error> refused;
  // One matching path: its series over [first, end), within the budget. `tags`: its tags
  // when the caller parsed them already.
  auto take = [&](std::string_view path, const HistorySeries& series, const TagMap* tags) {
    if (budget.paths == 0) {
      refused = too_much("the limit of series (reads.max_paths)", what, "max_paths");
      return false;
    }
    if (budget.points_read < n) {
      refused = Error{"the answer for '" + what.substr(0, 80) +
                          "' would need more "
                          "datapoints read than reads.max_points_read",
                      "narrow the pattern (fewer *) or shorten from/until; or raise "
                      "reads.max_points_read"};
      return false;
    }
    if (budget.answer_points) {
      uint64_t points = budget.points_cap == 0 ? n : std::min<uint64_t>(n, budget.points_cap);
      if (*budget.answer_points < points) {
        refused = too_much("the limit of datapoints (reads.max_points)", what, "max_points");
        return false;
      }
      *budget.answer_points -= points;
    }
    --budget.paths;
    budget.points_read -= n;
    render::Series s;
    s.name = std::string(path);
    s.path_expression = expression;
    s.start = first;
    s.end = end;
    s.step = step;
    s.values.assign(n, render::kNone);
    if (tags != nullptr) {
      s.tags = *tags;
    } else {  // graphite-web parses every name with its tag database
      auto parsed = parse_tagged_path(path);
      s.tags = parsed ? std::move(*parsed) : TagMap{{"name", s.name}};
    }
    series.visit(plan_, tier, first, end - step, [&](int64_t ts, double v) {
      if (ts >= first && ts < end) s.values[static_cast<size_t>((ts - first) / step)] = v;
    });
    out.push_back(std::move(s));
    return true;
  };
  std::optional<Error> walk_error = walk(take);
  if (refused) return *refused;
  if (walk_error) return *walk_error;
  std::sort(out.begin(), out.end(),
            [](const render::Series& a, const render::Series& b) { return a.name < b.name; });
  return out;
}

Result<std::vector<render::Series>> MemoryStore::fetch(const GraphitePattern& pattern,
                                                       const std::string& expression,
                                                       int64_t from_s, int64_t until_s,
                                                       int64_t now_s, FetchBudget& budget) const {
  return fetch_with(pattern.text(), expression, from_s, until_s, now_s, budget,
                    [&](auto& take) -> std::optional<Error> {
    bool scanned =
        scan(pattern, budget.match_steps, [&](std::string_view path, const HistorySeries& series) {
          return !tree_match(pattern, path) || take(path, series, nullptr);
        });
    if (scanned) return std::nullopt;
    return too_much(std::to_string(budget.match_steps) + " path comparisons", pattern.text(),
                    "max_match_steps");
  });
}

Result<std::vector<render::Series>> MemoryStore::fetch_tagged(const TagQuery& query,
                                                              const std::string& expression,
                                                              int64_t from_s, int64_t until_s,
                                                              int64_t now_s,
                                                              FetchBudget& budget) const {
  return fetch_with(expression, expression, from_s, until_s, now_s, budget,
                    [&](auto& take) -> std::optional<Error> {
    auto walked = for_each_tagged(
        query, budget.match_steps, [&](std::string_view path, const TagMap& tags) {
          return take(path, series_[index_.find(path)], &tags);
        });
    if (walked) return std::nullopt;
    return walked.error();
  });
}

nlohmann::json MemoryStore::render(const std::vector<std::string>& targets, int64_t from_s,
                                   int64_t until_s, size_t max_data_points) const {
  std::vector<GraphitePattern> patterns;
  size_t budget = 4096;
  for (const std::string& target : targets) {
    auto pattern = GraphitePattern::compile(target, unbounded_limits(), budget);
    if (pattern) patterns.push_back(std::move(*pattern));
  }
  auto result = render(patterns, from_s, until_s, max_data_points, unbounded_limits());
  return result ? std::move(*result) : nlohmann::json::array();
}

}  // namespace statherd::server
