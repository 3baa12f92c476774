// The daemon over its real interface: starts the statherd-server binary with its default
// configuration (WAL on, fsync before every acknowledgement, Graphite lines formatted and
// written to stdout, here /dev/null), then agents post encoded batches to /api/v1/ingest with the
// agent's own sender (common/http_client: one connection per request). Prints samples/s beside
// the reference figure, the server's peak RSS and the WAL's size.
// Usage: server_http_bench SERVER_BINARY [rounds] [agents] [procs] [series] [dists] [senders]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/shipper.h"
#include "bench/bench_batches.h"
#include "common/http_client.h"

using namespace statherd;
namespace fs = std::filesystem;

namespace {

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::perror("free port");
    std::exit(1);
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

pid_t start_server(const std::string& binary, const fs::path& dir, uint16_t port) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  std::string listen = "127.0.0.1:" + std::to_string(port);
  std::string token = (dir / "token").string(), state = (dir / "state").string();
  std::string log = (dir / "server.log").string();
  if (!std::freopen("/dev/null", "w", stdout) || !std::freopen(log.c_str(), "w", stderr)) _exit(127);
  ::execl(binary.c_str(), binary.c_str(), "--listen", listen.c_str(), "--token-file",
          token.c_str(), "--state-dir", state.c_str(), "--graphite", "-", nullptr);
  _exit(127);
}

bool healthy(uint16_t port) {
  HttpRequest req;
  req.target = {"127.0.0.1", port, "/healthz"};
  return http_exchange(req, std::chrono::seconds(1)).status == 200;
}

long peak_rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

uint64_t dir_bytes(const fs::path& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file(ec)) n += e.file_size(ec);
  return n;
}

}  // namespace

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

  char tmpl[] = "/tmp/statherd-http-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) return std::perror("mkdtemp"), 1;
  const fs::path dir = tmpl;
  const std::string token = "bench-token-0123456789abcdef";
  {
    std::ofstream(dir / "token") << token << "\n";
    ::chmod((dir / "token").c_str(), 0600);
  }
  const uint16_t port = free_port();
  const pid_t pid = start_server(argv[1], dir, port);
  for (int i = 0; i < 200 && !healthy(port); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (!healthy(port)) {
    std::fprintf(stderr, "statherd-server did not become healthy; log: %s/server.log\n", tmpl);
    ::kill(pid, SIGKILL);
    return 1;
  }

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

  // Each sender thread posts its agents' batches in order (an agent's seq only goes up).
  std::vector<std::thread> threads;
  std::vector<int> failures(senders, 0);
  auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < senders; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < s.rounds; ++r)
        for (int a = t; a < s.agents; a += senders) {
          agent::HttpSenderOptions o;
          o.url = {"127.0.0.1", port, ""};
          o.token = token;
          o.agent_id = "host-" + std::to_string(a);
          o.timeout = std::chrono::seconds(60);
          auto result = agent::HttpBatchSender(o).send(r + 1, batches[a][r]);
          if (result.http_status != 200) {
            if (failures[t]++ == 0)
              std::fprintf(stderr, "ingest: HTTP %d %s\n", result.http_status, result.detail.c_str());
          }
        }
    });
  for (auto& th : threads) th.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const long rss = peak_rss_kb(pid);
  const uint64_t wal = dir_bytes(dir / "state");
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  int failed = 0;
  for (int f : failures) failed += f;

  std::printf("statherd-server over HTTP, default config (WAL fsync on), %d senders "
              "(%d rounds x %d agents x %d processes x %d series%s)\n",
              senders, s.rounds, s.agents, s.procs, s.series, s.dists ? ", 1 in 10 a sketch" : "");
  std::printf("| %-44s | %16s |\n", "what", "samples/s");
  std::printf("|%s|%s|\n", std::string(46, '-').c_str(), std::string(18, '-').c_str());
  std::printf("| %-44s | %16.0f |\n", "statherd-server /api/v1/ingest (daemon)", samples / secs);
  std::printf("| %-44s | %16s |\n", "StatsD (issue's reference figure)", "~500000");
  std::printf("samples %llu in %d batches, payload %.1f MB, %.3f s, failed batches %d, "
              "server peak RSS %.0f MB, state dir %.1f MB, exit %d\n",
              static_cast<unsigned long long>(samples), s.rounds * s.agents, bytes / 1e6, secs,
              failed, rss / 1024.0, wal / 1e6, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  std::error_code ec;
  if (failed == 0) fs::remove_all(dir, ec);
  return failed == 0 ? 0 : 1;
}
