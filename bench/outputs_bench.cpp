// Output cost of statherd-server: one rolled-up interval of N series through each output
// (GET /metrics, remote_write, Graphite) and /render queries on the memory store. Prints one
// JSON object per measurement on stdout; bench/outputs_bench.py runs this, runs its Python
// references on the same series and prints the tables. Times are CPU time of the calling
// thread (the build machine is shared: wall time mostly measures the neighbours), median of
// --reps runs.
//
// The interval is shaped as the engine emits it (server/engine_emit.cpp): apps x hosts, each
// (app, host) and each app (level app, the sum over hosts) with 13 counters (count, rate,
// m1_rate, m5_rate, m15_rate) and 5 gauges (min, max, mean, sum, p50, p90, p99): 100 series
// per instance. --dump DIR writes what the Python side needs: points_N.tsv (the points),
// metrics_N.txt (statherd's /metrics text) and graphite_N.txt (statherd's Graphite lines).
//
// Usage: outputs_bench [--series 1000,10000,100000] [--reps 5] [--dump DIR] [--no-render]
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "server/sinks/graphite_naming.h"
#include "server/memory_store.h"
#include "server/sinks/graphite.h"
#include "server/sinks/prometheus.h"
#include "server/sinks/remote_write_proto.h"
#include "server/sinks/remote_write_series.h"

using namespace statherd;
using namespace statherd::server;

namespace {

constexpr int kCounters = 13, kGauges = 5;  // 13 x 5 + 5 x 7 = 100 series per instance
constexpr int64_t kStart = 1'800'000'000;   // first interval start, unix seconds
constexpr int64_t kStep = 10;               // interval, seconds
constexpr size_t kRwBatch = 2'000;          // RemoteWriteSinkOptions::batch_max_samples

struct Args {
  std::vector<int> series{1'000, 10'000, 100'000};
  int reps = 5;
  std::string dump;
  bool render = true;
};

struct Shape {
  int apps = 1, hosts = 9;  // series = apps * (hosts + 1) * 100
  int series() const { return apps * (hosts + 1) * 100; }
};

// 1,000 = 1 app x (9 hosts + app level); 10,000 = 4 x (24 + 1); 100,000 = 10 x (99 + 1).
Shape shape_for(int series) {
  int instances = std::max(series / 100, 2);
  int apps = instances >= 1000 ? 10 : instances >= 100 ? 4 : 1;
  return {apps, std::max(instances / apps - 1, 1)};
}

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// One (app, host) or app-level instance: realistic magnitudes (integer counts, rates with a
// decimal, EWMA meters and means with every digit of a double). `scale` is the host count at
// the app level (a sum over hosts). Records as the engine builds them: one per series.
void add_instance(IntervalOutput& out, Level level, const std::string& app, const std::string& host,
                  int salt, double scale) {
  for (int c = 0; c < kCounters; ++c) {
    std::string metric = "svc.handler" + std::to_string(c) + ".calls";
    double count = scale * static_cast<double>((salt * 37 + c * 101) % 900 + 17);
    double rate = count / static_cast<double>(kStep);
    out.add(make_series_key(level, app, host, -1, metric, {}), SeriesKind::Counter).count_total =
        count * 50;
    out.stat("count", count);
    out.stat("rate", rate);
    out.stat("m1_rate", rate * 1.0131457219);
    out.stat("m5_rate", rate * 0.9874219437);
    out.stat("m15_rate", rate * 0.9960125836);
  }
  static const char* const kGaugeStats[] = {"min", "max", "mean", "sum", "p50", "p90", "p99"};
  for (int g = 0; g < kGauges; ++g) {
    std::string metric = "db.pool" + std::to_string(g) + ".in_use";
    double base = static_cast<double>((salt * 13 + g * 7) % 40 + 1);
    const double values[] = {base,     base + 9, base + 4.0 / 3.0, scale * (base + 4.3),
                             base + 4, base + 8, base + 9};
    out.add(make_series_key(level, app, host, -1, metric, {}), SeriesKind::Gauge);
    for (int s = 0; s < 7; ++s) out.stat(kGaugeStats[s], values[s]);
  }
}

IntervalOutput make_interval(const Shape& shape) {
  IntervalOutput out;
  out.start_s = kStart;
  out.interval_s = kStep;
  out.stats.reserve(static_cast<size_t>(shape.series()));
  for (int a = 0; a < shape.apps; ++a) {
    std::string app = "app" + std::to_string(a);
    add_instance(out, Level::App, app, "", a, shape.hosts);
    for (int h = 0; h < shape.hosts; ++h) {
      char host[32];
      std::snprintf(host, sizeof host, "web-%03d", h);
      add_instance(out, Level::Host, app, host, a * 1000 + h, 1);
    }
  }
  return out;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  if (!f) {
    std::fprintf(stderr, "cannot write %s\nhint: --dump needs a writable directory\n",
                 path.c_str());
    std::exit(1);
  }
}

std::string points_tsv(const IntervalOutput& out) {
  std::string text;
  char value[40];
  for (const SeriesPoint& p : flat_points(out)) {
    std::snprintf(value, sizeof value, "%.17g", p.value);
    text += (p.level == Level::App ? "app\t" : "host\t") + p.app + '\t' + p.host + '\t' + p.metric +
            '\t' + p.stat + '\t' + value + '\n';
  }
  return text;
}

// GET /metrics: emit() of a new interval into series that exist (steady state), then scrape().
nlohmann::json bench_prometheus(IntervalOutput out, const Args& args, const std::string& dump) {
  PrometheusSink sink;
  double t0 = thread_cpu_s();
  sink.emit(out);  // first interval: creates every series
  double first_emit = thread_cpu_s() - t0;
  std::vector<double> emit, scrape, total;
  std::string text;
  for (int r = 0; r < args.reps; ++r) {
    out.start_s += kStep;
    double a = thread_cpu_s();
    sink.emit(out);
    double b = thread_cpu_s();
    text = sink.scrape();
    double c = thread_cpu_s();
    emit.push_back(b - a);
    scrape.push_back(c - b);
    total.push_back(c - a);
  }
  if (!dump.empty()) write_file(dump, text);
  return {{"section", "prometheus"},
          {"first_emit_s", first_emit},
          {"emit_s", median(emit)},
          {"scrape_s", median(scrape)},
          {"time_s", median(total)},
          {"bytes", text.size()},
          {"prom_series", sink.counters().series}};
}

// remote_write: what RemoteWriteSink::emit does with one interval (records to series, keys
// cached from a first interval), then what its sender does per batch of kRwBatch samples
// (encode, snappy).
nlohmann::json bench_remote_write(const IntervalOutput& out, const Args& args) {
  RwSeriesBuilder builder;
  std::vector<RwSeries> warm;
  builder.build(out, warm);
  std::vector<double> convert, encode, total;
  size_t samples = 0, raw_bytes = 0, wire_bytes = 0;
  for (int r = 0; r < args.reps; ++r) {
    double a = thread_cpu_s();
    std::vector<RwSeries> series;
    builder.build(out, series);
    double b = thread_cpu_s();
    samples = series.size();
    raw_bytes = wire_bytes = 0;
    for (size_t i = 0; i < series.size(); i += kRwBatch) {
      auto first = series.begin() + static_cast<ptrdiff_t>(i);
      auto last = series.begin() + static_cast<ptrdiff_t>(std::min(i + kRwBatch, series.size()));
      std::vector<RwSeries> batch(std::make_move_iterator(first), std::make_move_iterator(last));
      std::string raw = encode_write_request(batch);
      raw_bytes += raw.size();
      wire_bytes += snappy_block_compress(raw).size();
    }
    double c = thread_cpu_s();
    convert.push_back(b - a);
    encode.push_back(c - b);
    total.push_back(c - a);
  }
  return {{"section", "remote_write"},
          {"samples", samples},
          {"time_s", median(total)},
          {"convert_s", median(convert)},
          {"encode_compress_s", median(encode)},
          {"raw_bytes", raw_bytes},
          {"bytes", wire_bytes}};
}

bool wait_sent(const GraphiteSink& sink) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    auto c = sink.counters();
    if (c.lines_sent + c.lines_dropped >= c.lines_queued) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

GraphiteSinkOptions graphite_options(int fd, size_t lines) {
  GraphiteSinkOptions o;
  o.address = "-";
  o.stdout_fd = fd;
  o.queue_max_lines = lines * 2;
  return o;
}

// Bytes of one interval's lines: emitted once into a file (the dump, or an unnamed temp file).
uint64_t graphite_bytes(const IntervalOutput& out, const std::string& dump) {
  std::FILE* tmp = dump.empty() ? std::tmpfile() : nullptr;
  int fd = tmp ? fileno(tmp) : ::open(dump.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "cannot open %s\nhint: --dump needs a writable directory\n", dump.c_str());
    std::exit(1);
  }
  {
    GraphiteSink sink(graphite_options(fd, out.point_count()));
    sink.emit(out);
    sink.stop();  // flushes the queue into the file
  }
  struct stat st {};
  fstat(fd, &st);
  if (tmp)
    std::fclose(tmp);
  else
    ::close(fd);
  return static_cast<uint64_t>(st.st_size);
}

// Graphite: emit() (path, value and line formatting, queueing) on the caller's thread; the
// sender thread writes to /dev/null and is waited for between runs, outside the timing.
nlohmann::json bench_graphite(IntervalOutput out, const Args& args, const std::string& dump) {
  const uint64_t bytes = graphite_bytes(out, dump);  // at the interval start the row reports
  int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  std::vector<double> emit, path_only;
  {
    GraphiteSink sink(graphite_options(devnull, out.point_count()));
    for (int r = 0; r < args.reps; ++r) {
      out.start_s += kStep;
      double a = thread_cpu_s();
      sink.emit(out);
      emit.push_back(thread_cpu_s() - a);
      if (!wait_sent(sink)) std::fprintf(stderr, "graphite sender did not drain in 60 s\n");
    }
    sink.stop();
  }
  ::close(devnull);
  size_t path_bytes = 0;
  for (int r = 0; r < args.reps; ++r) {
    double a = thread_cpu_s();
    path_bytes = 0;
    for (const SeriesPoint& p : flat_points(out)) path_bytes += graphite_path(p, "statherd").size();
    path_only.push_back(thread_cpu_s() - a);
  }
  return {{"section", "graphite"},       {"lines", out.point_count()}, {"time_s", median(emit)},
          {"path_s", median(path_only)}, {"path_bytes", path_bytes},   {"bytes", bytes}};
}

// /render: a store holding 1 h of 10 s points for one app x (100 hosts + app level) x 100
// series, queried with a host wildcard matching 100 and 1,000 paths (JSON built and dumped,
// as the HTTP handler sends it). The match scans every path under "statherd.app0.hosts."
// (10,000), so more apps would only make the fill slower, not the query.
std::vector<nlohmann::json> bench_render(const Args& args) {
  IntervalOutput out = make_interval({1, 100});
  MemoryStore store(MemoryStoreOptions{});
  double t0 = thread_cpu_s();
  for (int i = 0; i < 360; ++i) {
    out.start_s = kStart + i * kStep;
    for (size_t k = 0; k < out.point_count(); ++k)
      out.stats[k].value = static_cast<double>((k + i) % 97);
    store.emit(out);
  }
  double fill_s = thread_cpu_s() - t0;
  const int64_t until = kStart + 359 * kStep + 5, from = until - 3600;
  std::vector<nlohmann::json> rows;
  for (const char* target : {"statherd.app0.hosts.*.svc.handler0.calls.count",
                             "statherd.app0.hosts.*.svc.handler?.calls.count"}) {
    std::vector<double> times, render_only;
    nlohmann::json result;
    std::string body;
    for (int r = 0; r < args.reps; ++r) {
      double a = thread_cpu_s();
      result = store.render({target}, from, until);
      double b = thread_cpu_s();
      body = result.dump();
      times.push_back(thread_cpu_s() - a);
      render_only.push_back(b - a);
    }
    size_t points = result.empty() ? 0 : result[0]["datapoints"].size();
    rows.push_back({{"section", "render"},
                    {"target", target},
                    {"paths", result.size()},
                    {"points_per_path", points},
                    {"time_s", median(times)},
                    {"render_s", median(render_only)},
                    {"bytes", body.size()},
                    {"store_paths", store.path_count()},
                    {"fill_s", fill_s}});
  }
  return rows;
}

Args parse_args(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--series" && has_value) {
      args.series.clear();
      std::string list = argv[++i];
      for (size_t pos = 0; pos < list.size();) {
        size_t comma = std::min(list.find(',', pos), list.size());
        args.series.push_back(std::atoi(list.substr(pos, comma - pos).c_str()));
        pos = comma + 1;
      }
    } else if (a == "--reps" && has_value) {
      args.reps = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--dump" && has_value) {
      args.dump = argv[++i];
    } else if (a == "--no-render") {
      args.render = false;
    } else {
      std::fprintf(stderr,
                   "unknown argument %s\nhint: outputs_bench [--series 1000,10000,100000] "
                   "[--reps 5] [--dump DIR] [--no-render]\n",
                   a.c_str());
      std::exit(2);
    }
  }
  return args;
}

std::string dump_path(const Args& args, const char* stem, int series, const char* ext) {
  if (args.dump.empty()) return {};
  return args.dump + "/" + stem + "_" + std::to_string(series) + ext;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse_args(argc, argv);
  for (int requested : args.series) {
    IntervalOutput out = make_interval(shape_for(requested));
    const int series = static_cast<int>(out.point_count());
    if (!args.dump.empty()) write_file(dump_path(args, "points", series, ".tsv"), points_tsv(out));
    nlohmann::json rows[] = {
        bench_prometheus(out, args, dump_path(args, "metrics", series, ".txt")),
        bench_remote_write(out, args),
        bench_graphite(out, args, dump_path(args, "graphite", series, ".txt"))};
    for (nlohmann::json& row : rows) {
      row["series"] = series;
      row["start_s"] = out.start_s;
      std::printf("%s\n", row.dump().c_str());
      std::fflush(stdout);
    }
  }
  if (args.render)
    for (const nlohmann::json& row : bench_render(args)) std::printf("%s\n", row.dump().c_str());
  return 0;
}
