// Steady-state agent read cost of statherd v2 files (the daemon path): StatherdV2Source keeps
// 1,000 files x 100 records (60 counters, 30 gauges, 10 histograms) mapped and re-reads every
// value each scrape (seq checks and SIGBUS-guarded copies included). Files are built byte by
// byte as docs/FORMAT.md specifies (tests/unit/statherd_v2_builder.h), with this process's pid
// so the source keeps reading them. Google Benchmark; items/s = records read per second.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "agent/sources/statherd_v2.h"
#include "tests/unit/statherd_v2_builder.h"

using namespace statherd::agent;

namespace {

struct V2Files {
  std::filesystem::path dir;
  explicit V2Files(int n) {
    dir = std::filesystem::temp_directory_path() /
          ("statherd-v2-bench-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    for (int i = 0; i < n; ++i) {
      // start time 0: "unknown", so liveness rests on the pid (ours) alone.
      testing::V2FileBuilder b(static_cast<uint64_t>(getpid()), 0, "benchapp");
      for (int k = 0; k < 60; ++k)
        b.add_number(1, "requests.kind" + std::to_string(k),
                     {{"route", "r" + std::to_string(k % 7)}}, i * 100.0 + k);
      for (int k = 0; k < 30; ++k) b.add_number(2, "pool.slot" + std::to_string(k), {}, k * 0.5);
      for (int k = 0; k < 10; ++k)
        b.add_histogram("latency" + std::to_string(k), {}, {0.001 * (k + 1), 0.01, 0.1, 1.5},
                        -200, 200);
      const std::vector<uint8_t> bytes = b.file_bytes();
      const std::string path = (dir / ("benchapp-" + std::to_string(i) + ".statherd")).string();
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd < 0 || ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()))
        std::abort();
      ::close(fd);
    }
  }
  ~V2Files() { std::filesystem::remove_all(dir); }
};

void BM_V2SteadyStateScrape1000Files(benchmark::State& state) {
  V2Files files(1000);
  StatherdV2Options opt;
  opt.globs = {(files.dir / "*.statherd").string()};
  opt.host = "bench";
  StatherdV2Source source(opt);
  ScrapeReport warm;
  source.scrape(0, warm);  // maps the files and parses their records
  if (!warm.errors.empty()) state.SkipWithError(warm.errors[0].message.c_str());
  size_t records = 0;
  for (auto _ : state) {
    ScrapeReport r;
    source.scrape(1, r);
    records = 0;
    for (const auto& s : r.sources) records += s.samples.size();
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * records));
  state.counters["records"] = static_cast<double>(records);
  state.counters["mapped"] = static_cast<double>(source.mapped_file_count());
}
BENCHMARK(BM_V2SteadyStateScrape1000Files)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
