// Steady-state cost of one collection of a prometheus_client multiprocess directory: the files
// stay mapped and each scrape re-reads the values (bench/prom_multiproc_bench.py generates the
// directory, runs this with PROM_MULTIPROC_BENCH_DIR set, and prints the table against
// prometheus_client's MultiProcessCollector).
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "agent/sources/prom_multiproc.h"

namespace {

void BM_PromMultiprocSteadyScrape(benchmark::State& state) {
  const char* dir = std::getenv("PROM_MULTIPROC_BENCH_DIR");
  if (!dir) {
    state.SkipWithError("set PROM_MULTIPROC_BENCH_DIR (bench/prom_multiproc_bench.py does)");
    return;
  }
  statherd::agent::PromMultiprocSource source({{{dir, "bench"}}, "host", false});
  statherd::agent::ScrapeReport warm;
  source.scrape(1, warm);  // maps every file and parses every key once
  size_t samples = 0;
  for (auto _ : state) {
    statherd::agent::ScrapeReport report;
    source.scrape(2, report);
    samples = report.sources.empty() ? 0 : report.sources[0].samples.size();
    benchmark::DoNotOptimize(report);
  }
  state.counters["files"] = static_cast<double>(source.mapped_file_count());
  state.counters["samples"] = static_cast<double>(samples);
}
BENCHMARK(BM_PromMultiprocSteadyScrape)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
