// bench/fleet (issue #10): a paced fleet against the real statherd-server binary over HTTP with
// its default configuration (bench/bench_daemon.h: WAL fsync on). Every host posts one batch per
// interval, the hosts spread over the interval as unsynchronized agents are, through the agent's
// own sender (one connection per request). Prints, per shape: counter increments arriving (an
// app-level counter read back from /render against what the batches carried), server RSS per
// process series, server CPU per million samples (everything: HTTP, WAL, rollup, sinks, store,
// emit), the same from 2 intervals + 3 s on (series already made: what a server that has run a
// while pays; the first figure carries every series' creation), and the ack
// latency p50/p99/max.
// The counters add more in some rounds than in others (bench/bench_batches.h, Shape::varied),
// so the host and app sums change from interval to interval; --steady-counters gives the data
// of the figures before 2026-12-04 evening (the same amount every round).
// Usage: fleet_bench [--steady-counters] SERVER_BINARY [hosts procs series interval_s
//                    intervals [senders [threads]]]
//   default: the three shapes of issue #10: 200x20x100 @10s (five minutes, then one), 1000x20x100
//   @10s, 20x10x100 @1s (60 intervals), then 400k's first minute with the rollup on one thread
//   (--threads 1). The "run" column is the run's length (intervals x interval).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/shipper.h"
#include "bench/bench_batches.h"
#include "bench/bench_daemon.h"
#include "bench/fleet_readback.h"

using namespace statherd;
using Clock = std::chrono::steady_clock;

namespace {

struct Fleet {
  int hosts = 200, procs = 20, series = 100, interval_s = 10, intervals = 6, senders = 16;
  int threads = 0;  // the server's --threads; 0: its default (auto)
  bool varied = true;  // some rounds add more (bench::Shape::varied)
};

struct Figures {
  uint64_t samples = 0, process_series = 0;
  double expected = 0, arrived = 0;
  long rss_kb = 0, peak_kb = 0;
  double cpu_per_million = 0, p50_ms = 0, p99_ms = 0, max_ms = 0;
  // From 2 intervals + 3 s on (every series, path and Prometheus series made, the first
  // intervals emitted): what a server that has run a while pays. 0 on a run too short.
  double steady_cpu_per_million = 0;
  int failed = 0;
};

using bench::arrived_count;
using bench::quantile;

Figures run(const std::string& binary, const Fleet& f) {
  bench::Shape shape;
  shape.agents = f.hosts;
  shape.procs = f.procs;
  shape.series = f.series;
  shape.varied = f.varied;
  std::vector<std::string> args = {"--interval", std::to_string(f.interval_s) + "s"};
  if (f.threads > 0) args.insert(args.end(), {"--threads", std::to_string(f.threads)});
  bench::ServerDaemon server(binary, args);
  const auto interval = std::chrono::seconds(f.interval_s);
  const int64_t wall0 = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
  const auto t0 = Clock::now() + std::chrono::milliseconds(200);

  Figures out;
  std::mutex mu;
  std::vector<double> latencies;
  const double cpu0 = server.cpu_seconds();
  std::vector<std::thread> threads;
  for (int t = 0; t < f.senders; ++t)
    threads.emplace_back([&, t] {
      std::vector<double> mine;
      int failed = 0;
      for (int r = 0; r < f.intervals; ++r)
        for (int h = t; h < f.hosts; h += f.senders) {
          // Host h sends at its own offset in every interval.
          auto offset = interval * h / f.hosts;
          auto when = t0 + interval * r + offset;
          std::this_thread::sleep_until(when);
          const int64_t ms = wall0 + std::chrono::duration_cast<std::chrono::milliseconds>(
                                         Clock::now() - t0).count();
          std::string body = bench::make_batch(shape, h, r, ms);
          agent::HttpSenderOptions o;
          o.url = {"127.0.0.1", server.port(), ""};
          o.token = bench::ServerDaemon::kToken;
          o.agent_id = "host-" + std::to_string(h);
          o.timeout = std::chrono::seconds(60);
          auto sent = Clock::now();
          auto result = agent::HttpBatchSender(o).send(r + 1, body);
          mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent).count());
          if (result.http_status != 200 && failed++ == 0)
            std::fprintf(stderr, "ingest: HTTP %d %s\n", result.http_status,
                         result.detail.c_str());
        }
      std::lock_guard lock(mu);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
      out.failed += failed;
    });
  // The steady window starts once every series is made: the sends of the first round fall in
  // at most the server's first two intervals, emitted by 2 intervals + the 2 s grace after
  // t0; 1 s more of margin. Hosts are spread evenly, so the samples after it are a fraction.
  const auto steady_from = interval * 2 + std::chrono::seconds(3);
  const double steady_share = 1.0 - std::chrono::duration<double>(steady_from).count() /
                                        std::chrono::duration<double>(interval * f.intervals).count();
  double cpu_steady0 = -1;
  if (steady_share >= 0.25) {
    std::this_thread::sleep_until(t0 + steady_from);
    cpu_steady0 = server.cpu_seconds();
  }
  for (auto& th : threads) th.join();
  out.cpu_per_million = 0;
  out.samples = static_cast<uint64_t>(f.hosts) * f.procs * f.series * f.intervals;
  out.process_series = static_cast<uint64_t>(f.hosts) * f.procs * f.series;
  // Wait for the last interval's rollup (end + grace), then read the counter back.
  std::this_thread::sleep_for(interval * 2 + std::chrono::seconds(3));
  const double cpu_end = server.cpu_seconds();
  out.cpu_per_million = (cpu_end - cpu0) / (static_cast<double>(out.samples) / 1e6);
  if (cpu_steady0 >= 0)
    out.steady_cpu_per_million =
        (cpu_end - cpu_steady0) / (static_cast<double>(out.samples) * steady_share / 1e6);
  out.rss_kb = server.memory_kb("VmRSS");
  out.peak_kb = server.memory_kb("VmHWM");
  // Every process of app0 (p % 5 == 0) on every host counts metric_0 from 0 at round 0 (its
  // first value, counted whole) to its value at the last round.
  out.expected = 0;
  for (int h = 0; h < f.hosts; ++h)
    for (int p = 0; p < f.procs; p += 5)
      out.expected += bench::bench_counter_value(shape, h, p, 0, f.intervals - 1);
  out.arrived = arrived_count(server);
  out.p50_ms = quantile(latencies, 0.5);
  out.p99_ms = quantile(latencies, 0.99);
  out.max_ms = latencies.empty() ? 0 : *std::max_element(latencies.begin(), latencies.end());
  if (out.failed || out.arrived != out.expected) server.keep_dir();
  return out;
}

void print(const Fleet& f, const Figures& x) {
  char steady[32] = "-";
  if (x.steady_cpu_per_million > 0)
    std::snprintf(steady, sizeof steady, "%.2f s", x.steady_cpu_per_million);
  std::printf("| %4d x %3d x %3d @%2ds | %4ds | %4s | %8llu | %9.0f / %-9.0f | %7.2f KiB (%6.0f MB) | "
              "%7.2f s | %8s | %6.1f / %6.1f / %7.1f ms | %d |\n",
              f.hosts, f.procs, f.series, f.interval_s, f.interval_s * f.intervals,
              f.threads > 0 ? std::to_string(f.threads).c_str() : "auto",
              static_cast<unsigned long long>(x.process_series), x.arrived, x.expected,
              static_cast<double>(x.rss_kb) * 1024.0 / static_cast<double>(x.process_series) / 1024.0,
              static_cast<double>(x.peak_kb) / 1024.0, x.cpu_per_million, steady, x.p50_ms, x.p99_ms,
              x.max_ms, x.failed);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  // --steady-counters: every counter adds the same amount every round (the data of the
  // figures measured before 2026-12-04 evening).
  bool varied = true;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--steady-counters") varied = false;
    else args.push_back(argv[i]);
  }
  argc = static_cast<int>(args.size());
  args.push_back(nullptr);  // argv[argc], as the one main() was given
  argv = args.data();
  if (argc < 2) {
    std::fprintf(stderr, "usage: fleet_bench [--steady-counters] SERVER_BINARY [hosts procs "
                         "series interval_s intervals [senders [threads]]]\n");
    return 2;
  }
  std::vector<Fleet> fleets;
  if (argc >= 7) {
    Fleet f;
    f.hosts = std::atoi(argv[2]);
    f.procs = std::atoi(argv[3]);
    f.series = std::atoi(argv[4]);
    f.interval_s = std::max(1, std::atoi(argv[5]));
    f.intervals = std::max(2, std::atoi(argv[6]));
    if (argc > 7) f.senders = std::max(1, std::atoi(argv[7]));
    if (argc > 8) f.threads = std::max(0, std::atoi(argv[8]));
    fleets.push_back(f);
  } else {
    // 400k process series every 10 s, over five minutes (making the series is one-off work, a
    // fifth of the run: the figure of a server in service) and over the first minute alone
    fleets.push_back({200, 20, 100, 10, 30, 16});
    fleets.push_back({200, 20, 100, 10, 6, 16});
    fleets.push_back({1000, 20, 100, 10, 4, 16});  // 2M process series every 10 s
    fleets.push_back({20, 10, 100, 1, 60, 4});     // 20k series every 1 s, one minute
    fleets.push_back({200, 20, 100, 10, 6, 16, 1});  // 400k's first minute, rollup on one thread
  }
  for (Fleet& f : fleets) f.varied = varied;
  std::printf("statherd-server over HTTP, default config (WAL fsync on); hosts x processes x "
              "series @interval; issue #10 targets: RSS <= 1.5 KiB per process series, CPU <= "
              "1.0 s per million samples, ack p99 <= 100 ms, max <= 500 ms; counters %s\n",
              varied ? "varied (some rounds add more)"
                     : "steady (--steady-counters: the same amount every round)");
  std::printf("| fleet | run | threads | process series | counter count arrived / sent | server RSS per process "
              "series (peak) | CPU per M samples | same, series made | ack p50 / p99 / max | "
              "failed |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  int bad = 0;
  for (const Fleet& f : fleets) {
    Figures x = run(argv[1], f);
    print(f, x);
    bad += x.failed != 0 || x.arrived != x.expected;
  }
  return bad ? 1 : 0;
}
