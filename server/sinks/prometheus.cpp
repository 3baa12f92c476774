#include "server/sinks/prometheus.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <limits>
#include <tuple>
#include <unordered_map>

#include "common/log.h"

namespace statherd::server {

namespace {

bool is_name_char(char ch, bool allow_colon) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '_' || (allow_colon && ch == ':');
}

void append_sanitized(std::string& out, std::string_view text, bool allow_colon) {
  for (char ch : text) out += is_name_char(ch, allow_colon) ? ch : '_';
}

std::string_view level_name(Level level) {
  switch (level) {
    case Level::Process: return "process";
    case Level::Host: return "host";
    case Level::App: return "app";
  }
  return "app";
}

prometheus::Labels series_labels(const SeriesPoint& p) {
  prometheus::Labels labels;
  for (const auto& [key, value] : p.tags) labels[prometheus_label_name(key)] = value;
  labels["level"] = std::string(level_name(p.level));
  labels["app"] = p.app;
  if (p.level != Level::App) labels["host"] = p.host;
  if (p.level == Level::Process) labels["pid"] = std::to_string(p.pid);
  return labels;
}

std::string series_key(const std::string& family, const prometheus::Labels& labels) {
  std::string key = family;
  for (const auto& [name, value] : labels) {
    key += '\x1f';
    key += name;
    key += '=';
    key += value;
  }
  return key;
}

// Points of one series (level, app, host, pid, metric, tags) share this key.
std::string group_key(const SeriesPoint& p) {
  std::string key = std::to_string(static_cast<int>(p.level)) + '\x1f' + p.app + '\x1f' + p.host +
                    '\x1f' + std::to_string(p.pid) + '\x1f' + p.metric;
  for (const auto& [k, v] : p.tags) key += '\x1f' + k + '=' + v;
  return key;
}

std::string help_of(std::string_view metric, std::string_view what) {
  return "statherd rollup of '" + std::string(metric) + "': " + std::string(what);
}

}  // namespace

std::string prometheus_metric_name(std::string_view metric, std::string_view stat) {
  std::string out = "statherd_";
  append_sanitized(out, metric, true);
  if (!stat.empty()) {
    out += '_';
    append_sanitized(out, stat, true);
  }
  return out;
}

std::string prometheus_label_name(std::string_view key) {
  static constexpr std::array<std::string_view, 5> kReserved{"level", "app", "host", "pid",
                                                             "quantile"};
  std::string out;
  append_sanitized(out, key, false);
  bool reserved = std::find(kReserved.begin(), kReserved.end(), out) != kReserved.end();
  if (out.empty() || (out[0] >= '0' && out[0] <= '9') || out.starts_with("__") || reserved) {
    out.insert(0, "tag_");
  }
  return out;
}

std::optional<double> quantile_of_stat(std::string_view stat) {
  if (stat.size() < 2 || stat[0] != 'p') return std::nullopt;
  std::string_view digits = stat.substr(1);
  if (digits.size() > 6 || !std::all_of(digits.begin(), digits.end(),
                                        [](char ch) { return ch >= '0' && ch <= '9'; })) {
    return std::nullopt;
  }
  // The first two digits are the whole percent, the rest its decimals ("p999" -> 99.9 %), so
  // q = digits / 10^len ("p5", one digit: 5 %). One division keeps 0.999 exactly "0.999".
  double value = std::stod(std::string(digits));
  double scale = digits.size() == 1 ? 100.0 : std::pow(10.0, static_cast<double>(digits.size()));
  return value / scale;
}

struct PrometheusSink::Series {
  Kind kind = Kind::Gauge;
  std::string family;
  prometheus::Labels labels;
  double value = 0;  // counters: the exported total; gauges: the latest value
  int64_t last_start_s = INT64_MIN;
  // Counters and summaries: (interval start, count, sum) already added, ascending, bounded.
  std::vector<std::tuple<int64_t, double, double>> counted;
  double count_total = 0, sum_total = 0;  // summaries
  std::map<double, double> quantiles;      // summaries: of the latest interval
};

struct PrometheusSink::Group {
  std::vector<const SeriesPoint*> points;
};

PrometheusSink::PrometheusSink(PrometheusSinkOptions options) : options_(options) {}

PrometheusSink::~PrometheusSink() = default;

void PrometheusSink::emit(const IntervalOutput& out) {
  // The engine emits a series' stats next to each other: a run of points with the same key is
  // one group, so the key is built once per point and looked up once per run.
  const std::vector<SeriesPoint> points = flat_points(out);  // TODO(#10): records
  std::unordered_map<std::string, Group> groups;
  groups.reserve(points.size() / 4 + 1);
  std::vector<Group*> order;  // first-seen order: families are created deterministically
  std::string key, last_key;
  Group* last = nullptr;
  for (const SeriesPoint& p : points) {
    key = group_key(p);
    if (last == nullptr || key != last_key) {
      auto [it, fresh] = groups.try_emplace(key);
      if (fresh) order.push_back(&it->second);
      last = &it->second;
      last_key = key;
    }
    last->points.push_back(&p);
  }
  std::shared_ptr<const std::string> stale;  // freed after the lock is released
  std::lock_guard lock(mutex_);
  for (const Group* group : order) emit_group(*group, out);
  if (!out.reemit) expire(out.start_s, out.interval_s);
  ++generation_;
  stale = std::move(text_);
  std::lock_guard published(counters_mutex_);
  published_ = counters_;
}

void PrometheusSink::emit_group(const Group& group, const IntervalOutput& out) {
  auto has = [&](std::string_view stat) {
    return std::any_of(group.points.begin(), group.points.end(),
                       [&](const SeriesPoint* p) { return p->stat == stat; });
  };
  const bool counter = has("rate");
  const bool summary = !counter && has("count");
  const SeriesPoint& head = *group.points.front();
  const prometheus::Labels labels = series_labels(head);
  const int64_t start = out.start_s;
  // No "sum" point: the interval's sum is unknown (Distribution::sum_unknown); _sum stays.
  double count = 0, sum = std::numeric_limits<double>::quiet_NaN();
  std::optional<double> count_total, sum_total;
  std::map<double, double> quantiles;
  for (const SeriesPoint* p : group.points) {
    if (counter && p->stat == "count") {
      std::string name = prometheus_metric_name(p->metric, "count_total");
      Series* s = find_or_add(Kind::Counter, name, p->metric, "total count", labels);
      if (s != nullptr && p->total) set_total(*s, start, *p->total, 0);
      else if (s != nullptr) add_count(*s, start, p->value, 0, out.reemit);
      continue;
    }
    if (summary) {
      if (p->stat == "count") { count = p->value; count_total = p->total; continue; }
      if (p->stat == "sum") { sum = p->value; sum_total = p->total; continue; }
      if (auto q = quantile_of_stat(p->stat)) { quantiles[*q] = p->value; continue; }
    }
    // "_sum" is reserved for summaries and histograms (promtool lint): a gauge's sum is "summed".
    std::string name = prometheus_metric_name(p->metric, p->stat == "sum" ? "summed" : p->stat);
    Series* s = find_or_add(Kind::Gauge, name, p->metric, p->stat, labels);
    if (s != nullptr && start >= s->last_start_s) {
      s->value = p->value;
      s->last_start_s = start;
    }
  }
  if (!summary) return;
  std::string name = prometheus_metric_name(head.metric, "");
  Series* s = find_or_add(Kind::Summary, name, head.metric, "distribution", labels);
  if (s == nullptr) return;
  if (start >= s->last_start_s) s->quantiles = std::move(quantiles);
  if (count_total) set_total(*s, start, *count_total, sum_total.value_or(s->sum_total));
  else add_count(*s, start, count, sum, out.reemit);
}

PrometheusSink::Series* PrometheusSink::find_or_add(Kind kind, const std::string& family,
                                                    std::string_view help_metric,
                                                    std::string_view help_what,
                                                    const prometheus::Labels& labels) {
  if (auto fk = family_kind_.find(family); fk != family_kind_.end() && fk->second != kind) {
    ++counters_.type_conflicts;
    return nullptr;
  }
  std::string key = series_key(family, labels);
  if (auto it = series_.find(key); it != series_.end()) return it->second.get();
  if (series_.size() >= options_.max_series) {
    ++counters_.series_rejected;
    return nullptr;
  }
  auto series = std::make_unique<Series>();
  series->kind = kind;
  series->family = family;
  series->labels = labels;
  // The sink keeps its series itself and builds the families at collect(): prometheus-cpp's
  // Registry checks every registered name on each new family, so thousands of new names (a
  // stat file with many fields) cost quadratic time on the thread that answers ingest.
  if (!family_help_.count(family)) family_help_.emplace(family, help_of(help_metric, help_what));
  family_kind_[family] = kind;
  ++family_series_[family];
  ++counters_.series;
  return series_.emplace(std::move(key), std::move(series)).first->second.get();
}

// Adds what this interval's count (and sum) adds beyond what was already added for it: the
// whole value the first time, the difference when a late-data re-emission raised it.
void PrometheusSink::add_count(Series& s, int64_t start_s, double count, double sum, bool reemit) {
  auto it = std::find_if(s.counted.begin(), s.counted.end(),
                         [&](const auto& c) { return std::get<0>(c) == start_s; });
  double prev_count = 0, prev_sum = 0;
  if (it != s.counted.end()) {
    prev_count = std::get<1>(*it);
    prev_sum = std::get<2>(*it);
  } else if (reemit && s.counted.size() >= options_.reemit_window &&
             start_s < std::get<0>(s.counted.front())) {
    ++counters_.reemit_untracked;  // its first value was added; the difference is unknown
    return;
  }
  double add_count = std::isfinite(count) ? std::max(0.0, count - prev_count) : 0.0;
  // An unknown (NaN) sum adds nothing and is not remembered as this interval's.
  double add_sum = std::isfinite(sum) ? sum - prev_sum : 0.0;
  if (!std::isfinite(sum)) sum = prev_sum;
  if (it != s.counted.end()) {
    *it = {start_s, std::max(count, prev_count), sum};
  } else {
    auto pos = std::upper_bound(s.counted.begin(), s.counted.end(), start_s,
                                [](int64_t t, const auto& c) { return t < std::get<0>(c); });
    s.counted.insert(pos, {start_s, count, sum});
    if (s.counted.size() > options_.reemit_window) s.counted.erase(s.counted.begin());
  }
  if (s.kind == Kind::Counter) {
    if (add_count > 0) s.value += add_count;
  } else {
    s.count_total += add_count;
    s.sum_total += add_sum;
  }
  s.last_start_s = std::max(s.last_start_s, start_s);
}

// The engine's running totals (SeriesPoint::total), exported as they are: they continue across
// server restarts. A total below the exported one means the engine's series expired and came
// back: the counter restarts there (a reset, as for a restarted process).
void PrometheusSink::set_total(Series& s, int64_t start_s, double count, double sum) {
  if (!std::isfinite(count)) return;
  if (s.kind == Kind::Counter) {
    s.value = count;
  } else {
    s.count_total = count;
    if (std::isfinite(sum)) s.sum_total = sum;
  }
  s.last_start_s = std::max(s.last_start_s, start_s);
}

void PrometheusSink::expire(int64_t newest_start_s, int64_t interval_s) {
  const int64_t oldest_kept = newest_start_s - options_.expire_intervals * std::max<int64_t>(1, interval_s);
  std::vector<std::string> idle;
  for (const auto& [key, s] : series_) {
    if (s->last_start_s < oldest_kept) idle.push_back(key);
  }
  for (const std::string& key : idle) remove(key);
  counters_.series_expired += idle.size();
}

void PrometheusSink::remove(const std::string& key) {
  auto it = series_.find(key);
  if (it == series_.end()) return;
  const Series& s = *it->second;
  const std::string family = s.family;
  series_.erase(it);
  --counters_.series;
  if (--family_series_[family] > 0) return;
  family_series_.erase(family);
  family_kind_.erase(family);
  family_help_.erase(family);
}

std::vector<prometheus::MetricFamily> PrometheusSink::collect() const {
  std::lock_guard lock(mutex_);
  return collect_locked();
}

std::vector<prometheus::MetricFamily> PrometheusSink::collect_locked() const {
  // series_ is ordered by family + labels: each family's series are adjacent and the families
  // come out sorted by name.
  std::vector<prometheus::MetricFamily> families;
  for (const auto& [key, s] : series_) {
    if (families.empty() || families.back().name != s->family) {
      prometheus::MetricFamily f;
      f.name = s->family;
      f.help = family_help_.at(s->family);
      f.type = s->kind == Kind::Counter ? prometheus::MetricType::Counter
               : s->kind == Kind::Gauge ? prometheus::MetricType::Gauge
                                        : prometheus::MetricType::Summary;
      families.push_back(std::move(f));
    }
    prometheus::ClientMetric m;
    for (const auto& [name, value] : s->labels) m.label.push_back({name, value});
    if (s->kind == Kind::Counter) {
      m.counter.value = s->value;
    } else if (s->kind == Kind::Gauge) {
      m.gauge.value = s->value;
    } else {
      m.summary.sample_count = static_cast<uint64_t>(std::llround(s->count_total));
      m.summary.sample_sum = s->sum_total;
      for (const auto& [q, v] : s->quantiles) m.summary.quantile.push_back({q, v});
    }
    families.back().metric.push_back(std::move(m));
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
