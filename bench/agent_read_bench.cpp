// Steady-state agent read cost (the daemon path): MmstatsV1Source keeps 1,000 mmstats v1 files
// x 100 fields mapped and re-reads the values every scrape (torn-read checks included). Also the
// pure parser on one 100-field file. Google Benchmark; items/s = fields read per second.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/sources/mmstats_v1.h"

using namespace statherd;
using namespace statherd::agent;

namespace {

void put_u16(std::string& b, uint16_t v) { b.append(reinterpret_cast<const char*>(&v), 2); }

// An mmstats v1 file the way the original lays it out: 30 buffered counters (Q), 70 buffered
// doubles (d), terminator, padded to a page.
std::string make_file_bytes(int seed) {
  std::string b(1, '\x01');
  for (int i = 0; i < 100; ++i) {
    std::string label = i < 30 ? "requests.kind" + std::to_string(i) + ".count"
                               : "pool.slot" + std::to_string(i) + ".value";
    put_u16(b, static_cast<uint16_t>(label.size()));
    b += label;
    put_u16(b, 1);
    b += i < 30 ? 'Q' : 'd';
    b += '\x00';  // write_buffer 0: the readable value is buffer 1
    if (i < 30) {
      uint64_t v[2] = {0, static_cast<uint64_t>(seed * 100 + i)};
      b.append(reinterpret_cast<const char*>(v), 16);
    } else {
      double v[2] = {0, seed * 0.5 + i};
      b.append(reinterpret_cast<const char*>(v), 16);
    }
  }
  put_u16(b, 0);
  b.resize((b.size() + 4095) / 4096 * 4096, '\0');
  return b;
}

struct Files {
  std::filesystem::path dir;
  explicit Files(int n) {
    dir = std::filesystem::temp_directory_path() / ("statherd-bench-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    for (int i = 0; i < n; ++i) {
      std::string bytes = make_file_bytes(i);
      // Our own (live) pid, so the source keeps reading them; the tid part tells them apart.
      std::string path = (dir / ("benchapp-" + std::to_string(getpid()) + "-" +
                                 std::to_string(i) + ".mmstats")).string();
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd < 0 || ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()))
        std::abort();
      ::close(fd);
    }
  }
  ~Files() { std::filesystem::remove_all(dir); }
};

void BM_SteadyStateScrape1000Files(benchmark::State& state) {
  Files files(1000);
  MmstatsV1Options opt;
  opt.globs = {(files.dir / "*.mmstats").string()};
  opt.host = "bench";
  MmstatsV1Source source(opt);
  ScrapeReport warm;
  source.scrape(0, warm);  // maps the files and caches their layouts
  size_t fields = 0;
  for (auto _ : state) {
    ScrapeReport r;
    source.scrape(1, r);
    fields = 0;
    for (const auto& s : r.sources) fields += s.samples.size();
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * fields));
  state.counters["us_per_file"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 1000, benchmark::Counter::kIsRate |
                                                          benchmark::Counter::kInvert);
  state.counters["fields"] = static_cast<double>(fields);
}
BENCHMARK(BM_SteadyStateScrape1000Files)->Unit(benchmark::kMillisecond);

void BM_ParseOne100FieldFile(benchmark::State& state) {
  std::string bytes = make_file_bytes(7);
  std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  for (auto _ : state) {
    auto r = parse_mmstats_v1(span);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(BM_ParseOne100FieldFile)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
