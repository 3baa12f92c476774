#include "server/rollup_record.h"

#include <atomic>
#include <mutex>
#include <string>
#include <unordered_set>

#include "common/log.h"
#include "common/string_hash.h"
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
  // The stats of server/rollup.h plus the quantiles of sources' summaries: few in practice,
  // but a summary's quantiles come from agents, so the table is capped (kMaxStatNames) and a
  // name beyond it is refused (""): its stat is not emitted, and a warning says so once.
  // Kept for the process' life, exit included (never destroyed: a Stat may point into it while
  // another thread still emits), and nodes never move.
  static std::mutex& mu = *new std::mutex;
  // The rollup's own names (server/rollup.cpp, engine_rollup_shards.cpp) are in from the start,
  // so names sent by agents cannot crowd them out.
  static auto& names = *new std::unordered_set<std::string, StringHash, std::equal_to<>>{
      "count", "sum",  "rate", "m1_rate", "m5_rate", "m15_rate", "last", "min", "max",
      "mean",  "p50",  "p75",  "p90",     "p95",     "p99",      "p999"};
  static bool warned = false;
  std::lock_guard lock(mu);
  auto it = names.find(name);
  if (it != names.end()) return *it;
  if (names.size() >= kMaxStatNames) {
    if (!warned) {
      warned = true;
      log::warn("more than " + std::to_string(kMaxStatNames) +
                " distinct stat names (summary quantiles sent by agents?): the stats of new "
                "ones, e.g. '" + std::string(name.substr(0, 64)) + "', are not emitted");
    }
    return {};
  }
  return *names.emplace(name).first;
}

uint64_t next_series_key_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

SeriesKeyRef make_series_key(Level level, std::string app, std::string host, int64_t pid,
                             std::string metric, Tags tags) {
  auto* key = new SeriesKey();
  key->id = next_series_key_id();
  key->level = level;
  key->app = std::move(app);
  key->host = std::move(host);
  key->pid = pid;
  key->metric = std::move(metric);
  key->tags = std::move(tags);
  return SeriesKeyRef(key);  // the first reference
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
