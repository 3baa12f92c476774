#include "server/sinks/prometheus.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <iterator>
#include <limits>
#include <span>
#include <tuple>

#include "common/log.h"

namespace statherd::server {

namespace {

// Sorted by quantile, one value per quantile (the last one given: "p50" and "p500" are both 0.5).
void sort_quantiles(std::vector<std::pair<double, double>>& q) {
  auto before = [](const auto& x, const auto& y) { return x.first < y.first; };
  if (std::adjacent_find(q.begin(), q.end(), [](const auto& x, const auto& y) {
        return !(x.first < y.first);
      }) == q.end())
    return;  // the usual case: the engine lists them ascending
  std::stable_sort(q.begin(), q.end(), before);
  std::vector<std::pair<double, double>> unique;
  for (const auto& p : q) {
    if (!unique.empty() && unique.back().first == p.first) unique.back() = p;
    else unique.push_back(p);
  }
  q = std::move(unique);
}

}  // namespace

// Small on purpose (up to max_series of them: ~576k at 400k process series): 64 bytes, the
// name is its family's, the labels are built from `key` when collected, and what only some
// series need is in `extra`.
struct PrometheusSink::Series {
  static constexpr uint64_t kNoKey = UINT64_MAX;
  Families::iterator family;
  SeriesKeyRef key;  // the key that made it: its labels are this key's
  double value = 0;  // counters: the exported total; gauges: the latest value
  int64_t last_start_s = INT64_MIN;
  // The SeriesKey id whose KeyCache points here (kNoKey: none yet); others (keys whose labels
  // are the same) in extra->cached_by.
  uint64_t cached_by = kNoKey;
  // What only some series need, made when first needed (most are gauges and counters with
  // engine totals, which need none of it).
  struct Extra {
    // Counters and summaries without totals: (interval start, count, sum) already added,
    // ascending, bounded.
    std::vector<std::tuple<int64_t, double, double>> counted;
    std::vector<std::pair<double, double>> quantiles;  // summaries: of the latest interval
    double count_total = 0, sum_total = 0;               // summaries
    std::vector<uint64_t> cached_by;                     // beyond the first
  };
  std::unique_ptr<Extra> extra;
  uint32_t id = 0;          // its place in series_ and index_
  uint32_t family_pos = 0;  // its place in family->second.members
  Kind kind = Kind::Gauge;
  bool expiring = false;  // chosen by expire(): removed next

  Extra& more() {
    if (!extra) extra = std::make_unique<Extra>();
    return *extra;
  }
  double count_total() const { return extra ? extra->count_total : 0; }
  double sum_total() const { return extra ? extra->sum_total : 0; }
  void add_cached_by(uint64_t key_id) {
    if (cached_by == kNoKey) cached_by = key_id;
    else if (cached_by != key_id) {
      std::vector<uint64_t>& more_keys = more().cached_by;
      if (std::find(more_keys.begin(), more_keys.end(), key_id) == more_keys.end())
        more_keys.push_back(key_id);
    }
  }
  template <class Fn>
  void for_each_cached_by(Fn&& fn) const {
    if (cached_by != kNoKey) fn(cached_by);
    if (extra)
      for (uint64_t key_id : extra->cached_by) fn(key_id);
  }
};
uint32_t PrometheusSink::stat_id(std::string_view stat) {
  auto [it, fresh] =
      stat_ids_.try_emplace(std::string(stat), static_cast<uint32_t>(stat_names_.size()));
  if (fresh) {
    stat_names_.emplace_back(stat);
    stat_quantiles_.push_back(quantile_of_stat(stat).value_or(0));
  }
  return it->second;
}

PrometheusSink::Slot& PrometheusSink::slot_of(KeyCache& c, size_t index, std::string_view stat) {
  std::vector<Slot>& slots = c.slots;
  if (index < slots.size() && same_stat_name(stat_names_[slots[index].stat], stat))
    return slots[index];
  for (Slot& s : slots)
    if (same_stat_name(stat_names_[s.stat], stat)) return s;
  const PromTarget t = prometheus_target(c.kind, c.key->metric, stat);
  const uint32_t id = stat_id(stat);
  Slot& s = slots.emplace_back();
  s.stat = id;
  s.role = t.role;
  return s;
}

PrometheusSink::PrometheusSink(PrometheusSinkOptions options) : options_(options) {
#ifndef _GLIBCXX_DEBUG  // its checked map iterators are larger
  static_assert(sizeof(void*) != 8 || sizeof(Series) <= 64);
#endif
}

PrometheusSink::~PrometheusSink() = default;

void PrometheusSink::emit(const IntervalOutput& out) {
  std::shared_ptr<const std::string> stale;  // freed after the lock is released
  std::lock_guard lock(mutex_);
  cache_.begin_emit();
  for (const RollupRecord& r : out.records)
    if (r.key) emit_record(r, out);
  if (!out.reemit) expire(out.start_s, out.interval_s);
  ++generation_;
  stale = std::move(text_);
  std::lock_guard published(counters_mutex_);
  published_ = counters_;
}

PrometheusSink::KeyCache& PrometheusSink::cache_for(const RollupRecord& r) {
  bool fresh = false;
  KeyCache& c = cache_.get(r.key->id, fresh);
  if (fresh) {
    keys_at(INT64_MIN).push_back(r.key->id);  // leaves unless a record lists it later
    c.key = SeriesKeyRef(r.key);
    c.kind = r.kind;
    c.slots.reserve(r.stat_count);  // exactly: a vector grown slot by slot ends up to 2x that
    c.summary.role = PromRole::SummaryCount;  // stands for the summary itself
  } else if (c.kind != r.kind) {  // the same key with another kind: every stat means another thing
    c.kind = r.kind;
    c.slots.clear();
  }
  return c;
}

PrometheusSink::Series* PrometheusSink::resolve(KeyCache& c, Slot& slot, Kind kind,
                                                std::string_view help_what) {
  if (slot.series != nullptr) return slot.series;
  if (slot.refused_at == removals_) {  // still full / still taken: counted as a new refusal
    ++(slot.conflict ? counters_.type_conflicts : counters_.series_rejected);
    return nullptr;
  }
  const uint64_t conflicts = counters_.type_conflicts;
  const std::string family = kind == Kind::Summary
                                 ? prometheus_metric_name(c.key->metric, "")
                                 : prometheus_target(c.kind, c.key->metric,
                                                     stat_names_[slot.stat]).family;
  Series* s = find_or_add(kind, family, c.key->metric, help_what, c.key);
  if (s == nullptr) {  // refused or a type conflict: tried again next time
    slot.refused_at = removals_;
    slot.conflict = counters_.type_conflicts != conflicts;
    return nullptr;
  }
  slot.series = s;
  s->add_cached_by(c.key->id);
  return s;
}

void PrometheusSink::emit_record(const RollupRecord& r, const IntervalOutput& out) {
  KeyCache& c = cache_for(r);
  const int64_t start = out.start_s;
  if (!out.reemit && start > c.last_start_s) {
    c.last_start_s = start;
    keys_at(start).push_back(r.key->id);
  }
  // No "sum" stat: the interval's sum is unknown (Distribution::sum_unknown); _sum stays.
  double count = 0, sum = std::numeric_limits<double>::quiet_NaN();
  quantiles_.clear();
  const std::span<const Stat> stats = out.stats_of(r);
  for (size_t i = 0; i < stats.size(); ++i) {
    Slot& slot = slot_of(c, i, stats[i].name);
    const double v = stats[i].value;
    switch (slot.role) {
      case PromRole::CounterTotal:
        if (Series* s = resolve(c, slot, Kind::Counter, "total count")) {
          if (std::isfinite(r.count_total)) set_total(*s, start, r.count_total, 0);
          else add_count(*s, start, v, 0, out.reemit);
        }
        break;
      case PromRole::SummaryCount: count = v; break;
      case PromRole::SummarySum: sum = v; break;
      case PromRole::Quantile: quantiles_.emplace_back(stat_quantiles_[slot.stat], v); break;
      case PromRole::Gauge:
        if (Series* s = resolve(c, slot, Kind::Gauge, stat_names_[slot.stat]);
            s && start >= s->last_start_s) {
          s->value = v;
          touch(*s, start);
        }
        break;
    }
  }
  if (r.kind != SeriesKind::Distribution) return;
  Series* s = resolve(c, c.summary, Kind::Summary, "distribution");
  if (s == nullptr) return;
  if (start >= s->last_start_s) {
    sort_quantiles(quantiles_);
    s->more().quantiles.assign(quantiles_.begin(), quantiles_.end());
  }
  if (std::isfinite(r.count_total))
    set_total(*s, start, r.count_total, std::isfinite(r.sum_total) ? r.sum_total : s->sum_total());
  else
    add_count(*s, start, count, sum, out.reemit);
}

// A summary `s` also writes the samples `s_count` and `s_sum`: a new family may not take one of
// those names, and a new summary may not be `s` when `s_count` or `s_sum` is a family already
// (strict parsers refuse a page with two HELP lines for one name).
bool PrometheusSink::clashes_with_a_summary(const std::string& family, Kind kind) const {
  for (std::string_view suffix : {std::string_view("_count"), std::string_view("_sum")}) {
    if (family.ends_with(suffix)) {
      auto base = families_.find(family.substr(0, family.size() - suffix.size()));
      if (base != families_.end() && base->second.kind == Kind::Summary) return true;
    }
    if (kind == Kind::Summary && families_.count(family + std::string(suffix))) return true;
  }
  return false;
}

PrometheusSink::Series* PrometheusSink::find_or_add(Kind kind, const std::string& family,
                                                    std::string_view help_metric,
                                                    std::string_view help_what,
                                                    const SeriesKeyRef& key) {
  auto fk = families_.find(family);
  if ((fk != families_.end() && fk->second.kind != kind) ||
      (fk == families_.end() && clashes_with_a_summary(family, kind))) {
    ++counters_.type_conflicts;
    return nullptr;
  }
  std::string map_key = prometheus_series_id(family, *key);
  auto key_of = [this](uint32_t id) { return index_key(*series_[id]); };
  if (uint32_t id = index_.find(map_key, key_of); id != IdIndex::kNone) return series_[id].get();
  if (counters_.series >= options_.max_series) {
    ++counters_.series_rejected;
    return nullptr;
  }
  // The sink keeps its series itself and builds the families at collect(): prometheus-cpp's
  // Registry checks every registered name on each new family, so thousands of new names (a
  // stat file with many fields) cost quadratic time on the thread that answers ingest.
  if (fk == families_.end())
    fk = families_.emplace(family, Family{kind, prometheus_help(help_metric, help_what), {}}).first;
  uint32_t id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else {
    id = static_cast<uint32_t>(series_.size());
    series_.emplace_back();
  }
  series_[id] = std::make_unique<Series>();
  Series* s = series_[id].get();
  s->kind = kind;
  s->family = fk;
  s->key = key;
  s->id = id;
  s->family_pos = static_cast<uint32_t>(fk->second.members.size());
  fk->second.members.push_back(id);
  index_.insert(map_key, id);
  ++counters_.series;
  series_at(INT64_MIN).push_back(s);  // expires unless an update lists it later
  return s;
}

std::string PrometheusSink::index_key(const Series& s) const {
  return prometheus_series_id(s.family->first, *s.key);
}

// Adds what this interval's count (and sum) adds beyond what was already added for it: the
// whole value the first time, the difference when a late-data re-emission raised it.
void PrometheusSink::add_count(Series& series, int64_t start_s, double count, double sum,
                               bool reemit) {
  std::vector<std::tuple<int64_t, double, double>>& counted = series.more().counted;
  auto it = std::find_if(counted.begin(), counted.end(),
                         [&](const auto& c) { return std::get<0>(c) == start_s; });
  double prev_count = 0, prev_sum = 0;
  if (it != counted.end()) {
    prev_count = std::get<1>(*it);
    prev_sum = std::get<2>(*it);
  } else if (reemit && counted.size() >= options_.reemit_window &&
             start_s < std::get<0>(counted.front())) {
    ++counters_.reemit_untracked;  // its first value was added; the difference is unknown
    return;
  }
  double add_count = std::isfinite(count) ? std::max(0.0, count - prev_count) : 0.0;
  // An unknown (NaN) sum adds nothing and is not remembered as this interval's.
  double add_sum = std::isfinite(sum) ? sum - prev_sum : 0.0;
  if (!std::isfinite(sum)) sum = prev_sum;
  if (it != counted.end()) {
    *it = {start_s, std::max(count, prev_count), sum};
  } else {
    auto pos = std::upper_bound(counted.begin(), counted.end(), start_s,
                                [](int64_t t, const auto& c) { return t < std::get<0>(c); });
    counted.insert(pos, {start_s, count, sum});
    if (counted.size() > options_.reemit_window) counted.erase(counted.begin());
  }
  if (series.kind == Kind::Counter) {
    if (add_count > 0) series.value += add_count;
  } else {
    Series::Extra& e = series.more();
    e.count_total += add_count;
    e.sum_total += add_sum;
  }
  touch(series, start_s);
}

// The engine's running totals (RollupRecord::count_total / sum_total), exported as they are: they continue across
// server restarts. A total below the exported one means the engine's series expired and came
// back: the counter restarts there (a reset, as for a restarted process).
void PrometheusSink::set_total(Series& s, int64_t start_s, double count, double sum) {
  if (!std::isfinite(count)) return;
  if (s.kind == Kind::Counter) {
    s.value = count;
  } else {
    Series::Extra& e = s.more();
    e.count_total = count;
    if (std::isfinite(sum)) e.sum_total = sum;
  }
  touch(s, start_s);
}

void PrometheusSink::touch(Series& s, int64_t start_s) {
  if (start_s <= s.last_start_s) return;
  s.last_start_s = start_s;
  series_at(start_s).push_back(&s);
}

namespace {

// The list of `start_s`. A new newest start (an interval after the last one) lists about as
// many as the list before it: it gets `spare`'s buffer (dropped when more than twice that, so
// one spike does not keep its buffer for good) and room for that many. Any other new list (a
// re-emitted, older start; the INT64_MIN list of keys and series made this interval) lists few
// and leaves the spare alone.
template <class T>
std::vector<T>& list_at(std::map<int64_t, std::vector<T>>& lists, std::vector<T>& spare,
                        int64_t start_s) {
  auto [it, added] = lists.try_emplace(start_s);
  if (added && it != lists.begin() && std::next(it) == lists.end()) {
    std::vector<T>& list = it->second;
    const size_t want = std::prev(it)->second.size();
    if (spare.capacity() <= 2 * want + 64) list = std::move(spare);
    spare = std::vector<T>();
    list.clear();
    list.reserve(want);
  }
  return it->second;
}

// Keeps the bigger buffer of `dropped` and `spare` as the spare.
template <class T>
void keep_spare(std::vector<T>& dropped, std::vector<T>& spare) {
  if (dropped.capacity() > spare.capacity()) spare = std::move(dropped);
}

}  // namespace

std::vector<PrometheusSink::Series*>& PrometheusSink::series_at(int64_t start_s) {
  if (series_at_ == nullptr || series_at_start_ != start_s) {
    series_at_ = &list_at(series_by_start_, spare_series_, start_s);
    series_at_start_ = start_s;
  }
  return *series_at_;
}

std::vector<uint64_t>& PrometheusSink::keys_at(int64_t start_s) {
  if (keys_at_ == nullptr || keys_at_start_ != start_s) {
    keys_at_ = &list_at(keys_by_start_, spare_keys_, start_s);
    keys_at_start_ = start_s;
  }
  return *keys_at_;
}

// Only what was last updated before oldest_kept is looked at: the series and keys listed
// under those interval starts (each is listed under every start it was updated at, so one
// listed under a later start too is still fresh, and a series removed here is listed under no
// start that remains).
void PrometheusSink::expire(int64_t newest_start_s, int64_t interval_s) {
  const int64_t oldest_kept = newest_start_s - options_.expire_intervals * std::max<int64_t>(1, interval_s);
  series_at_ = nullptr;  // the lists erased below may be the ones they point at
  keys_at_ = nullptr;
  std::vector<Series*> idle;
  while (!series_by_start_.empty() && series_by_start_.begin()->first < oldest_kept) {
    for (Series* s : series_by_start_.begin()->second)
      if (s->last_start_s < oldest_kept && !s->expiring) {
        s->expiring = true;
        idle.push_back(s);
      }
    keep_spare(series_by_start_.begin()->second, spare_series_);
    series_by_start_.erase(series_by_start_.begin());
  }
  for (Series* s : idle) remove(*s);
  counters_.series_expired += idle.size();
  while (!keys_by_start_.empty() && keys_by_start_.begin()->first < oldest_kept) {
    for (uint64_t id : keys_by_start_.begin()->second)
      if (const KeyCache* c = cache_.find(id); c != nullptr && c->last_start_s < oldest_kept)
        cache_.erase(id);
    keep_spare(keys_by_start_.begin()->second, spare_keys_);
    keys_by_start_.erase(keys_by_start_.begin());
  }
}

void PrometheusSink::remove(const Series& s) {
  s.for_each_cached_by([&](uint64_t key_id) {  // no cache entry may reach it any more
    KeyCache* c = cache_.find(key_id);
    if (c == nullptr) return;
    for (Slot& slot : c->slots)
      if (slot.series == &s) slot.series = nullptr;
    if (c->summary.series == &s) c->summary.series = nullptr;
  });
  index_.erase(index_key(s), [this](uint32_t id) { return index_key(*series_[id]); });
  const Families::iterator family = s.family;
  std::vector<uint32_t>& members = family->second.members;
  const uint32_t id = s.id, pos = s.family_pos;
  members[pos] = members.back();
  series_[members[pos]]->family_pos = pos;
  members.pop_back();
  series_[id].reset();  // s is gone
  free_ids_.push_back(id);
  ++removals_;
  --counters_.series;
  if (members.empty()) families_.erase(family);
}

std::vector<prometheus::MetricFamily> PrometheusSink::collect() const {
  std::lock_guard lock(mutex_);
  return collect_locked();
}

std::vector<prometheus::MetricFamily> PrometheusSink::collect_locked() const {
  // Families by name, each family's series by their labels.
  std::vector<prometheus::MetricFamily> families;
  families.reserve(families_.size());
  for (const auto& [name, family] : families_) {
    prometheus::MetricFamily f;
    f.name = name;
    f.help = family.help;
    f.type = family.kind == Kind::Counter ? prometheus::MetricType::Counter
             : family.kind == Kind::Gauge ? prometheus::MetricType::Gauge
                                          : prometheus::MetricType::Summary;
    f.metric.reserve(family.members.size());
    for (uint32_t id : family.members) {
      const Series& s = *series_[id];
      prometheus::ClientMetric m;
      for (auto& [label, value] : prometheus_series_labels(*s.key))
        m.label.push_back({label, value});
      if (s.kind == Kind::Counter) {
        m.counter.value = s.value;
      } else if (s.kind == Kind::Gauge) {
        m.gauge.value = s.value;
      } else {
        m.summary.sample_count = static_cast<uint64_t>(std::llround(s.count_total()));
        m.summary.sample_sum = s.sum_total();
        if (s.extra)
          for (const auto& [q, v] : s.extra->quantiles) m.summary.quantile.push_back({q, v});
      }
      f.metric.push_back(std::move(m));
    }
    std::sort(f.metric.begin(), f.metric.end(), [](const auto& a, const auto& b) {
      return std::lexicographical_compare(
          a.label.begin(), a.label.end(), b.label.begin(), b.label.end(),
          [](const auto& x, const auto& y) {
            return std::tie(x.name, x.value) < std::tie(y.name, y.value);
          });
    });
    families.push_back(std::move(f));
  }
  return families;
}

std::string PrometheusSink::scrape(const std::vector<prometheus::MetricFamily>& extra) const {
  return *shared_text() + prometheus::TextSerializer().Serialize(extra);
}

std::shared_ptr<const std::string> PrometheusSink::shared_text() const {
  std::vector<prometheus::MetricFamily> families;
  uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    if (text_ && text_generation_ == generation_) return text_;
    generation = generation_;
    families = collect_locked();
  }
  auto text = std::make_shared<const std::string>(prometheus::TextSerializer().Serialize(families));
  std::lock_guard lock(mutex_);
  if (generation == generation_) {
    text_ = text;
    text_generation_ = generation;
  }
  return text;
}

// As of the last emit, without waiting for one that runs (it holds mutex_ throughout).
PrometheusSink::Counters PrometheusSink::counters() const {
  std::lock_guard lock(counters_mutex_);
  return published_;
}

}  // namespace statherd::server
