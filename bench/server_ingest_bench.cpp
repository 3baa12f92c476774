// Server ingest + rollup throughput on one core: encoded agent batches go through
// Engine::ingest (decode, dedup, counter deltas, interval aggregation; WAL fsync off) and
// Engine::flush (rollup at app and host levels, EWMA ticks). Prints a table with the reference
// figures the issue names, and the median wall time of one flush (the rollup of one interval).
// Usage: server_ingest_bench [rounds] [agents] [procs] [series] [dists] [threads] [process]
// threads: EngineOptions::threads for the rollup (default 1; 0 = auto); process = 1: the
// process level too (one more aggregate per process series).
// dists = 1: one series in ten is a latency sketch (the statherd v2 Histogram) instead of a
// tagged counter: each round adds observations, so the engine subtracts the cumulative sketches
// (the per-interval distribution path) and merges them across processes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/bench_batches.h"
#include "server/engine.h"

using namespace statherd;

using bench::make_batch;
using bench::Shape;

int main(int argc, char** argv) {
  Shape s;
  if (argc > 1) s.rounds = std::atoi(argv[1]);
  if (argc > 2) s.agents = std::atoi(argv[2]);
  if (argc > 3) s.procs = std::atoi(argv[3]);
  if (argc > 4) s.series = std::atoi(argv[4]);
  if (argc > 5) s.dists = std::atoi(argv[5]);
  const unsigned threads = argc > 6 ? static_cast<unsigned>(std::atoi(argv[6])) : 1;
  const bool process_level = argc > 7 && std::atoi(argv[7]) != 0;

  const int64_t interval_ms = 10'000;
  const int64_t t0 = 1'800'000'000'000;
  std::vector<std::vector<std::string>> rounds(s.rounds);
  for (int r = 0; r < s.rounds; ++r)
    for (int a = 0; a < s.agents; ++a)
      rounds[r].push_back(make_batch(s, a, r, t0 + r * interval_ms + 1000));

  server::EngineOptions opt;
  opt.interval = std::chrono::milliseconds(interval_ms);
  opt.fsync = false;
  opt.threads = threads;
  opt.level_process = process_level;
  server::Engine engine(opt);
  if (auto st = engine.open(t0); !st.ok()) {
    std::fprintf(stderr, "open: %s\n", st.error().to_string().c_str());
    return 1;
  }

  uint64_t samples = 0, points = 0, bytes = 0;
  std::vector<double> flush_ms;
  auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < s.rounds; ++r) {
    int64_t now = t0 + r * interval_ms + 2000;
    for (const auto& body : rounds[r]) {
      auto out = engine.ingest(body, now);
      if (out.http_status != 200) {
        std::fprintf(stderr, "ingest failed: %d %s\n", out.http_status, out.message.c_str());
        return 1;
      }
      samples += out.samples;
      bytes += body.size();
    }
    auto flush_start = std::chrono::steady_clock::now();
    auto outs = engine.flush(now + interval_ms + opt.grace.count());
    flush_ms.push_back(std::chrono::duration<double, std::milli>(
                           std::chrono::steady_clock::now() - flush_start).count());
    for (const auto& io : outs) points += io.point_count();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double rate = samples / secs;

  std::sort(flush_ms.begin(), flush_ms.end());
  std::printf("server ingest + rollup, rollup threads %u (%d rounds x %d agents x %d processes x %d series%s)\n",
              threads, s.rounds, s.agents, s.procs, s.series, s.dists ? ", 1 in 10 a sketch" : "");
  std::printf("| %-34s | %16s |\n", "what", "samples/s");
  std::printf("|%s|%s|\n", std::string(36, '-').c_str(), std::string(18, '-').c_str());
  std::printf("| %-34s | %16.0f |\n", "statherd-server ingest + rollup", rate);
  std::printf("| %-34s | %16s |\n", "StatsD (issue's reference figure)", "~500000");
  std::printf("| %-34s | %16s |\n", "target", "1500000");
  std::printf("samples %llu, payload %.1f MB (%.1f bytes/sample), rolled-up points %llu, %.3f s\n",
              static_cast<unsigned long long>(samples), bytes / 1e6,
              static_cast<double>(bytes) / samples, static_cast<unsigned long long>(points), secs);
  std::printf("flush (rollup of one interval): median %.1f ms, max %.1f ms over %zu flushes\n",
              flush_ms[flush_ms.size() / 2], flush_ms.back(), flush_ms.size());
  return 0;
}
