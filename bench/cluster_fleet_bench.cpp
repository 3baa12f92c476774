// bench/cluster_fleet (issue #13): bench/fleet's paced fleet against 1, 2 and 3 statherd-server
// binaries in one cluster (a real etcd; 64 shards, 2 replicas; each server its default
// configuration with an etcd section: WAL fsync on). Every host's batch is split by shard as
// the agent splits it (agent/shard_router.h, by the map the servers put in force) and each part
// is posted to its server through the agent's own sender, so with two or more servers every
// sample reaches two of them. Prints per run the fleet's throughput (samples acknowledged per
// second of the run, replicas counted), the ack latency, and per server: samples received, CPU
// per million of them (everything: HTTP, WAL, rollup, the gate, sinks, store, etcd rounds), RSS;
// and the app-level counter read back (from the server that holds it) against what the batches
// carried. The machine has two cores: the servers (and the bench's senders, which do the
// agents' split) share them, so the per-server figures are the ones to compare.
// Usage: cluster_fleet_bench SERVER_BINARY [hosts procs series interval_s intervals]
//   default: 100 x 20 x 100 @10s, 6 intervals (200k process series), against one server
//   without etcd (the reference, side by side), then 1, 2 and 3 servers in a cluster.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/shard_router.h"
#include "agent/shipper.h"
#include "bench/bench_batches.h"
#include "bench/bench_daemon.h"
#include "bench/fleet_readback.h"
#include "common/wire.h"
#include "tests/integration/etcd_process.h"

using namespace statherd;
using Clock = std::chrono::steady_clock;

namespace {

struct Fleet {
  int hosts = 100, procs = 20, series = 100, interval_s = 10, intervals = 6, senders = 8;
};

struct PerServer {
  uint64_t samples = 0;
  double cpu = 0;
  long rss_kb = 0;
};

using bench::arrived_count;
using bench::quantile;

// n servers in a cluster; n = 0: the reference, one server without an etcd section.
void run(const std::string& binary, const Fleet& f, int n) {
  const bool single = n == 0;
  itest::EtcdProcess etcd;
  if (!etcd.ready()) {
    std::fprintf(stderr, "etcd did not start (Debian etcd-server): %s\n", etcd.log().c_str());
    std::exit(1);
  }
  char tmpl[] = "/tmp/statherd-cluster-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) std::perror("mkdtemp"), std::exit(1);
  const std::filesystem::path dir = tmpl;
  std::vector<std::unique_ptr<bench::ServerDaemon>> servers;
  std::map<std::string, size_t> index;  // server id -> servers[]
  for (int i = 0; i < std::max(n, 1); ++i) {
    const std::string id = "s" + std::to_string(i + 1);
    const auto config = dir / (id + ".yaml");
    std::ofstream(config) << "etcd:\n  endpoints: [http://127.0.0.1:" << etcd.port()
                          << "]\n  cluster: bench\n  id: " << id << "\n  lease_ttl: 3s\n";
    std::vector<std::string> args = {"--interval", std::to_string(f.interval_s) + "s"};
    if (!single) args.insert(args.end(), {"--config", config.string()});
    servers.push_back(std::make_unique<bench::ServerDaemon>(binary, args));
    index[id] = static_cast<size_t>(i);
  }
  // The map of all n in force, every shard led (the reference: one map of its one server).
  cluster::ShardMap map = *cluster::make_map(1, 0, 64, 1, {"s1"});
  for (int tries = 0; !single; ++tries) {
    if (tries > 600) std::fprintf(stderr, "no map of %d servers in force\n", n), std::exit(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    uint32_t may_emit = 0;
    bool all = true;
    nlohmann::json in_force;
    for (const auto& s : servers) {
      auto r = s->get("/api/v1/cluster");
      auto v = nlohmann::json::parse(r.body, nullptr, false);
      if (r.status != 200 || v.is_discarded() || v["in_force"].is_null()) {
        all = false;
        break;
      }
      for (const auto& m : v["maps"])
        if (m["epoch"] == v["in_force"]) in_force = m;
      all = all && in_force["members"].size() == static_cast<size_t>(n);
      may_emit += v["may_emit"].get<uint32_t>();
    }
    if (!all || may_emit != 64) continue;
    auto m = cluster::make_map(in_force["epoch"], in_force["from_ms"], in_force["shards"],
                               in_force["replicas"],
                               in_force["members"].get<std::vector<std::string>>());
    if (!m) std::fprintf(stderr, "%s\n", m.error().message.c_str()), std::exit(1);
    map = *m;
    break;
  }
  agent::ShardRouter router;
  router.set_maps({map});

  bench::Shape shape;
  shape.agents = f.hosts;
  shape.procs = f.procs;
  shape.series = f.series;
  const auto interval = std::chrono::seconds(f.interval_s);
  const int64_t wall0 = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
  const auto t0 = Clock::now() + std::chrono::milliseconds(200);
  std::vector<double> cpu0;
  for (const auto& s : servers) cpu0.push_back(s->cpu_seconds());
  std::mutex mu;
  std::vector<double> latencies;
  std::vector<uint64_t> received(servers.size(), 0);
  int failed = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < f.senders; ++t)
    threads.emplace_back([&, t] {
      std::vector<double> mine;
      std::vector<uint64_t> got(servers.size(), 0);
      int bad = 0;
      for (int r = 0; r < f.intervals; ++r)
        for (int h = t; h < f.hosts; h += f.senders) {
          std::this_thread::sleep_until(t0 + interval * r + interval * h / f.hosts);
          const int64_t ms = wall0 + std::chrono::duration_cast<std::chrono::milliseconds>(
                                         Clock::now() - t0).count();
          auto batch = decode_batch(bench::make_batch(shape, h, r, ms));
          auto parts = router.split(*batch);
          for (auto& part : *parts) {
            const size_t s = index.at(part.server);
            agent::HttpSenderOptions o;
            o.url = {"127.0.0.1", servers[s]->port(), ""};
            o.token = bench::ServerDaemon::kToken;
            o.agent_id = "host-" + std::to_string(h);
            o.timeout = std::chrono::seconds(60);
            const std::string body = encode_batch(part.batch);
            const auto sent = Clock::now();
            auto result = agent::HttpBatchSender(o).send(static_cast<uint64_t>(r + 1), body);
            mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent).count());
            if (result.http_status != 200 && bad++ == 0)
              std::fprintf(stderr, "ingest: HTTP %d %s\n", result.http_status,
                           result.detail.c_str());
            got[s] += part.batch.sample_count();
          }
        }
      std::lock_guard lock(mu);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
      for (size_t s = 0; s < got.size(); ++s) received[s] += got[s];
      failed += bad;
    });
  for (auto& th : threads) th.join();
  const double run_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::this_thread::sleep_for(interval * 2 + std::chrono::seconds(3));  // the last rollups
  double expected = 0;
  for (int h = 0; h < f.hosts; ++h)
    for (int p = 0; p < f.procs; p += 5)
      expected += bench::bench_counter_value(shape, h, p, 0, f.intervals - 1);
  double arrived = 0;
  uint64_t total = 0;
  for (const auto& s : servers) arrived = std::max(arrived, arrived_count(*s));
  for (uint64_t r : received) total += r;
  std::printf("| %s | %4d x %3d x %3d @%2ds x %d | %9.0f / %-9.0f | %9llu | %8.0f /s | "
              "%6.1f / %6.1f / %7.1f ms | %d |\n",
              single ? "1, no etcd" : std::to_string(n).c_str(), f.hosts, f.procs, f.series,
              f.interval_s, f.intervals, arrived, expected,
              static_cast<unsigned long long>(total), static_cast<double>(total) / run_s,
              quantile(latencies, 0.5), quantile(latencies, 0.99),
              latencies.empty() ? 0 : *std::max_element(latencies.begin(), latencies.end()),
              failed);
  for (size_t s = 0; s < servers.size(); ++s) {
    const double cpu = servers[s]->cpu_seconds() - cpu0[s];
    std::printf("|   s%zu | samples %9llu | CPU %6.2f s | %5.2f s per million | RSS %6.0f MB |\n",
                s + 1, static_cast<unsigned long long>(received[s]), cpu,
                received[s] ? cpu / (static_cast<double>(received[s]) / 1e6) : 0.0,
                static_cast<double>(servers[s]->memory_kb("VmRSS")) / 1024.0);
  }
  std::fflush(stdout);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: cluster_fleet_bench SERVER_BINARY [hosts procs series interval_s "
                         "intervals]\n");
    return 2;
  }
  Fleet f;
  if (argc > 6) {
    f.hosts = std::atoi(argv[2]);
    f.procs = std::atoi(argv[3]);
    f.series = std::atoi(argv[4]);
    f.interval_s = std::max(1, std::atoi(argv[5]));
    f.intervals = std::max(2, std::atoi(argv[6]));
  }
  std::printf("| servers | fleet | app counter arrived / expected | samples acked (replicas "
              "counted) | throughput | ack p50 / p99 / max | failed |\n");
  for (int n = 0; n <= 3; ++n) run(argv[1], f, n);
  return 0;
}
