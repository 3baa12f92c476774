#include "server/rollup_record.h"

#include <atomic>
#include <mutex>
#include <string>
#include <unordered_set>

#include "server/series_point.h"

namespace statherd::server {

std::string_view level_name(Level level) {
  switch (level) {
    case Level::Process: return "process";
    case Level::Host: return "host";
    case Level::App: return "app";
  }
  return "app";
}

std::string_view series_kind_name(SeriesKind kind) {
  switch (kind) {
    case SeriesKind::Counter: return "counter";
    case SeriesKind::Gauge: return "gauge";
    case SeriesKind::Distribution: return "distribution";
  }
  return "gauge";
}

std::string_view stat_name(std::string_view name) {
  // Few distinct names (the stats of server/rollup.h, quantiles of the sources' summaries):
  // kept for the process' life, so a Stat may point into them. Nodes never move.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static std::mutex mu;
  static std::unordered_set<std::string, Hash, std::equal_to<>> names;
  std::lock_guard lock(mu);
  auto it = names.find(name);
  if (it == names.end()) it = names.emplace(name).first;
  return *it;
}

uint64_t next_series_key_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

SeriesKeyRef make_series_key(Level level, std::string app, std::string host, int64_t pid,
                             std::string metric, Tags tags) {
  auto key = std::make_shared<SeriesKey>();
  key->id = next_series_key_id();
  key->level = level;
  key->app = std::move(app);
  key->host = std::move(host);
  key->pid = pid;
  key->metric = std::move(metric);
  key->tags = std::move(tags);
  return key;
}

std::vector<SeriesPoint> flat_points(const IntervalOutput& out) {
  std::vector<SeriesPoint> points;
  points.reserve(out.stats.size());
  for (const RollupRecord& r : out.records) {
    for (const Stat& s : out.stats_of(r)) {
      SeriesPoint& p = points.emplace_back();
      p.level = r.key->level;
      p.app = r.key->app;
      p.host = r.key->host;
      p.pid = r.key->pid;
      p.metric = r.key->metric;
      p.tags = r.key->tags;
      p.stat = s.name;
      p.value = s.value;
      if (s.name == "count" && !std::isnan(r.count_total)) p.total = r.count_total;
      if (s.name == "sum" && !std::isnan(r.sum_total)) p.total = r.sum_total;
    }
  }
  return points;
}

}  // namespace statherd::server
