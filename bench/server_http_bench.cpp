// The daemon over its real interface: the statherd-server binary with its default configuration
// (bench/bench_daemon.h: WAL on, fsync before every acknowledgement), agents posting encoded
// batches to /api/v1/ingest as fast as the server answers, with the agent's own sender (one
// connection per request). Prints samples/s beside the reference figure, the server's peak RSS
// and the state dir's size. The paced fleet with ack latencies is fleet_bench.
// Usage: server_http_bench SERVER_BINARY [rounds] [agents] [procs] [series] [dists] [senders]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "agent/shipper.h"
#include "bench/bench_batches.h"
#include "bench/bench_daemon.h"

using namespace statherd;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: server_http_bench SERVER_BINARY [rounds] [agents] [procs] "
                         "[series] [dists] [senders]\n");
    return 2;
  }
  bench::Shape s;
  s.rounds = argc > 2 ? std::atoi(argv[2]) : 10;
  if (argc > 3) s.agents = std::atoi(argv[3]);
  if (argc > 4) s.procs = std::atoi(argv[4]);
  if (argc > 5) s.series = std::atoi(argv[5]);
  if (argc > 6) s.dists = std::atoi(argv[6]);
  const int senders = argc > 7 ? std::max(1, std::atoi(argv[7])) : 4;

  // Batches stamped now: the server takes them as the current interval's.
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
  std::vector<std::vector<std::string>> batches(s.agents);  // [agent][round]
  uint64_t samples = 0, bytes = 0;
  for (int a = 0; a < s.agents; ++a)
    for (int r = 0; r < s.rounds; ++r) {
      batches[a].push_back(bench::make_batch(s, a, r, now_ms + r));
      bytes += batches[a].back().size();
      samples += static_cast<uint64_t>(s.procs) * s.series;
    }

  bench::ServerDaemon server(argv[1]);
  // Each sender thread posts its agents' batches in order (an agent's seq only goes up).
  std::vector<std::thread> threads;
  std::vector<int> failures(senders, 0);
  const double cpu0 = server.cpu_seconds();
  auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < senders; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < s.rounds; ++r)
        for (int a = t; a < s.agents; a += senders) {
          agent::HttpSenderOptions o;
          o.url = {"127.0.0.1", server.port(), ""};
          o.token = bench::ServerDaemon::kToken;
          o.agent_id = "host-" + std::to_string(a);
          o.timeout = std::chrono::seconds(60);
          auto result = agent::HttpBatchSender(o).send(r + 1, batches[a][r]);
          if (result.http_status != 200 && failures[t]++ == 0)
            std::fprintf(stderr, "ingest: HTTP %d %s\n", result.http_status, result.detail.c_str());
        }
    });
  for (auto& th : threads) th.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = server.cpu_seconds() - cpu0;
  const long rss = server.memory_kb("VmHWM");
  const uint64_t state = server.state_bytes();
  const int exit_code = server.stop();
  int failed = 0;
  for (int f : failures) failed += f;
  if (failed) server.keep_dir();

  std::printf("statherd-server over HTTP, default config (WAL fsync on), %d senders "
              "(%d rounds x %d agents x %d processes x %d series%s)\n",
              senders, s.rounds, s.agents, s.procs, s.series, s.dists ? ", 1 in 10 a sketch" : "");
  std::printf("| %-44s | %16s |\n", "what", "samples/s");
  std::printf("|%s|%s|\n", std::string(46, '-').c_str(), std::string(18, '-').c_str());
  std::printf("| %-44s | %16.0f |\n", "statherd-server /api/v1/ingest (daemon)", samples / secs);
  std::printf("| %-44s | %16s |\n", "StatsD (issue's reference figure)", "~500000");
  std::printf("samples %llu in %d batches, payload %.1f MB, %.3f s, server CPU %.2f s per "
              "million samples, failed batches %d, server peak RSS %.0f MB, state dir %.1f MB, "
              "exit %d\n",
              static_cast<unsigned long long>(samples), s.rounds * s.agents, bytes / 1e6, secs,
              cpu / (samples / 1e6), failed, rss / 1024.0, state / 1e6, exit_code);
  return failed == 0 ? 0 : 1;
}
