// The memory store's bytes per stored point and per path (issue #10 item 1), for realistic
// series, beside the old layout (a std::map<std::string, Ring> of 16-byte slots, copied
// below as it was). Both are fed the same points through the same path names; the heap bytes
// each holds are counted by this program's operator new (malloc_usable_size: what the
// allocator really hands out, rounding included).
// Usage: memory_store_bench [paths_per_kind hours]   (default 1000 paths, 6 h at 10 s)
#include <malloc.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "server/sinks/graphite_naming.h"
#include "server/memory_store.h"

namespace {

std::atomic<long long> g_live{0};

}  // namespace

// operator delete frees what operator new above mallocs; GCC cannot see that they pair.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  g_live += static_cast<long long>(malloc_usable_size(p));
  return p;
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept {
  if (!p) return;
  g_live -= static_cast<long long>(malloc_usable_size(p));
  std::free(p);
}
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete(void* p, size_t) noexcept { operator delete(p); }
void operator delete[](void* p, size_t) noexcept { operator delete(p); }

using namespace statherd::server;

namespace {

// The old store's layout (server/memory_store.h before issue #10): retention / interval slots
// per path, grown as points arrive, in a std::map keyed by the path string.
class OldStore {
 public:
  explicit OldStore(int64_t retention_s) : retention_s_(retention_s) {}
  void store(const std::string& path, int64_t ts, int64_t interval_s, double value) {
    auto it = series_.find(path);
    if (it == series_.end()) {
      Ring ring;
      ring.interval_s = interval_s;
      ring.capacity = static_cast<size_t>(std::max<int64_t>(1, retention_s_ / interval_s));
      ring.base_ts = ts;
      it = series_.emplace(path, std::move(ring)).first;
    }
    Ring& ring = it->second;
    size_t i = static_cast<size_t>((ts - ring.base_ts) / interval_s) % ring.capacity;
    if (i >= ring.slots.size()) ring.slots.resize(i + 1);
    ring.slots[i] = {ts, value};
    ring.newest_ts = std::max(ring.newest_ts, ts);
  }
  size_t points() const {
    size_t n = 0;
    for (const auto& [path, ring] : series_) n += ring.slots.size();
    return n;
  }
  size_t slot_bytes() const {
    size_t n = 0;
    for (const auto& [path, ring] : series_) n += ring.slots.capacity() * sizeof(Slot);
    return n;
  }

 private:
  struct Slot {
    int64_t ts = INT64_MIN;
    double value = 0;
  };
  struct Ring {
    int64_t interval_s = 10, newest_ts = INT64_MIN, base_ts = 0;
    size_t capacity = 1;
    std::vector<Slot> slots;
  };
  int64_t retention_s_;
  std::map<std::string, Ring, std::less<>> series_;
};

// One kind of series: a stat name and the value of path p at interval k.
struct Kind {
  const char* name;
  const char* stat;
  bool amount;
  double (*value)(std::mt19937_64&, int p, int64_t k, double& state);
};

double noisy_count(std::mt19937_64& rng, int p, int64_t, double&) {
  std::normal_distribution<double> n(0, 1);
  double base = 50 + 37 * (p % 11);
  return std::max(0.0, std::round(base + std::sqrt(base) * n(rng)));
}

const Kind kKinds[] = {
    {"counter count (noisy integers)", "count", true, noisy_count},
    {"counter rate (count / 10 s)", "rate", false,
     [](std::mt19937_64& r, int p, int64_t k, double& s) { return noisy_count(r, p, k, s) / 10; }},
    {"counter m1_rate (EWMA)", "m1_rate", false,
     [](std::mt19937_64& r, int p, int64_t k, double& s) {
       s += (noisy_count(r, p, k, s) / 10 - s) * (1 - std::exp(-10.0 / 60));
       return s;
     }},
    {"gauge mean (random walk)", "mean", false,
     [](std::mt19937_64& r, int, int64_t, double& s) {
       s += std::normal_distribution<double>(0, 0.5)(r);
       return 100 + s;
     }},
    {"gauge constant", "max", false, [](std::mt19937_64&, int p, int64_t, double&) {
       return 4.0 + p % 3;
     }},
    {"distribution p99 (sketch buckets)", "p99", false,
     [](std::mt19937_64& r, int p, int64_t, double&) {
       // A DDSketch (alpha 1 %) quantile is a bucket's value: few distinct values.
       int bucket = 300 + p % 50 + static_cast<int>(std::poisson_distribution<int>(3)(r));
       return 2 * std::pow(1.02, bucket) / (1 + 1.02);
     }},
};

SeriesPoint point_for(const Kind& kind, int p) {
  SeriesPoint s;
  s.level = Level::Host;
  s.app = "app" + std::to_string(p % 10);
  s.host = "host-" + std::to_string(p / 10);
  s.metric = "service.component.metric_" + std::to_string(p % 100);
  s.stat = kind.stat;
  return s;
}

struct Row {
  size_t paths = 0, points = 0;
  long long new_series = 0, new_total = 0, old_slots = 0, old_total = 0;
  size_t old_points = 0;
};

Row run(const Kind& kind, int paths, int64_t intervals) {
  Row row;
  std::vector<SeriesPoint> points;
  std::vector<std::string> names;
  for (int p = 0; p < paths; ++p) {
    points.push_back(point_for(kind, p));
    if (kind.amount) points.back().total = 0;
    names.push_back(graphite_path(points.back(), "statherd"));
  }
  std::vector<SeriesKeyRef> keys;  // one per path, made once as the engine does
  for (const SeriesPoint& sp : points)
    keys.push_back(make_series_key(sp.level, sp.app, sp.host, sp.pid, sp.metric, sp.tags));
  const int64_t t0 = 1'764'000'000;
  {
    long long before = g_live;
    MemoryStore store({});
    std::mt19937_64 rng(7);
    std::vector<double> state(static_cast<size_t>(paths), 0);
    IntervalOutput out;
    out.interval_s = 10;
    for (int64_t k = 0; k < intervals; ++k) {
      out = IntervalOutput{};
      out.start_s = t0 + 10 * k;
      out.interval_s = 10;
      for (int p = 0; p < paths; ++p) {
        const SeriesPoint& sp = points[static_cast<size_t>(p)];
        RollupRecord& r = out.add(keys[static_cast<size_t>(p)],
                                  kind.amount ? SeriesKind::Counter : SeriesKind::Gauge);
        if (kind.amount) r.count_total = 0;
        out.stat(sp.stat, kind.value(rng, p, k, state[static_cast<size_t>(p)]));
      }
      store.emit(out);
    }
    out = IntervalOutput{};
    MemoryStoreStats s = store.stats();
    row.paths = s.paths;
    row.points = s.points;
    row.new_series = static_cast<long long>(s.series_bytes);
    row.new_total = g_live - before;
  }
  {
    long long before = g_live;
    OldStore old(6 * 3600);  // the old store holding what the new one's finest tier holds
    std::mt19937_64 rng(7);
    std::vector<double> state(static_cast<size_t>(paths), 0);
    for (int64_t k = 0; k < intervals; ++k)
      for (int p = 0; p < paths; ++p)
        old.store(names[static_cast<size_t>(p)], t0 + 10 * k, 10,
                  kind.value(rng, p, k, state[static_cast<size_t>(p)]));
    row.old_points = old.points();
    row.old_slots = static_cast<long long>(old.slot_bytes());
    row.old_total = g_live - before;
  }
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  int paths = argc > 1 ? std::max(1, std::atoi(argv[1])) : 1000;
  double hours = argc > 2 ? std::atof(argv[2]) : 6;
  const int64_t intervals = std::max<int64_t>(1, static_cast<int64_t>(hours * 360));
  std::printf("memory store: %d paths per kind, %.1f h at 10 s (%lld intervals), default tiers "
              "10s:6h,5m:7d; old = 16-byte slots in a std::map (its retention set to 6h).\n"
              "B/point: chunk bytes / points stored (new: every tier's points); B/path: every "
              "heap byte the store holds / paths (path names, index, headers included).\n",
              paths, hours, static_cast<long long>(intervals));
  std::printf("| series | points/path new (old) | B/point new | B/point old | B/path new | "
              "B/path old | old/new |\n|---|---|---|---|---|---|---|\n");
  Row all;
  for (const Kind& kind : kKinds) {
    Row r = run(kind, paths, intervals);
    std::printf("| %s | %zu (%zu) | %.2f | %.2f | %.0f | %.0f | %.1fx |\n", kind.name,
                r.points / r.paths, r.old_points / r.paths,
                static_cast<double>(r.new_series) / static_cast<double>(r.points),
                static_cast<double>(r.old_slots) / static_cast<double>(r.old_points),
                static_cast<double>(r.new_total) / static_cast<double>(r.paths),
                static_cast<double>(r.old_total) / static_cast<double>(r.paths),
                static_cast<double>(r.old_total) / static_cast<double>(r.new_total));
    std::fflush(stdout);
    all.paths += r.paths;
    all.points += r.points;
    all.old_points += r.old_points;
    all.new_series += r.new_series;
    all.new_total += r.new_total;
    all.old_slots += r.old_slots;
    all.old_total += r.old_total;
  }
  std::printf("| all kinds | %zu (%zu) | %.2f | %.2f | %.0f | %.0f | %.1fx |\n",
              all.points / all.paths, all.old_points / all.paths,
              static_cast<double>(all.new_series) / static_cast<double>(all.points),
              static_cast<double>(all.old_slots) / static_cast<double>(all.old_points),
              static_cast<double>(all.new_total) / static_cast<double>(all.paths),
              static_cast<double>(all.old_total) / static_cast<double>(all.paths),
              static_cast<double>(all.old_total) / static_cast<double>(all.new_total));
  return 0;
}
