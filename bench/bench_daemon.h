// The statherd-server binary as the benchmarks drive it: started on a free loopback port with a
// temp state dir, a token file and otherwise its default configuration (WAL on, fsync before
// every acknowledgement; Graphite lines formatted and written to stdout, here /dev/null), its
// log in DIR/server.log; its CPU time and memory read from /proc.
#pragma once

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
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/http_client.h"

namespace statherd::bench {

inline uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::perror("free port");
    std::exit(1);
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

class ServerDaemon {
 public:
  static constexpr const char* kToken = "bench-token-0123456789abcdef";

  // Starts `binary` with `extra` flags after the bench's own; exits the bench if it does not
  // answer /healthz within 10 s.
  ServerDaemon(const std::string& binary, std::vector<std::string> extra = {}) {
    char tmpl[] = "/tmp/statherd-bench-XXXXXX";
    if (!::mkdtemp(tmpl)) std::perror("mkdtemp"), std::exit(1);
    dir_ = tmpl;
    std::ofstream(dir_ / "token") << kToken << "\n";
    ::chmod((dir_ / "token").c_str(), 0600);
    port_ = free_loopback_port();
    std::vector<std::string> argv = {binary, "--listen", "127.0.0.1:" + std::to_string(port_),
                                     "--token-file", (dir_ / "token").string(), "--state-dir",
                                     (dir_ / "state").string(), "--graphite", "-"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::fflush(nullptr);  // else the child's freopen writes the parent's buffered output
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      std::string log = (dir_ / "server.log").string();
      if (!std::freopen("/dev/null", "w", stdout) || !std::freopen(log.c_str(), "w", stderr))
        _exit(127);
      ::execv(args[0], args.data());
      _exit(127);
    }
    for (int i = 0; i < 200 && !healthy(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!healthy()) {
      std::fprintf(stderr, "statherd-server did not become healthy; log: %s/server.log\n",
                   dir_.c_str());
      ::kill(pid_, SIGKILL);
      std::exit(1);
    }
  }
  ServerDaemon(const ServerDaemon&) = delete;
  ServerDaemon& operator=(const ServerDaemon&) = delete;
  ~ServerDaemon() {
    if (pid_ > 0) stop();
    std::error_code ec;
    if (keep_dir_) std::fprintf(stderr, "server dir kept: %s\n", dir_.c_str());
    else std::filesystem::remove_all(dir_, ec);
  }

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::filesystem::path& dir() const { return dir_; }
  void keep_dir() { keep_dir_ = true; }

  bool healthy() const {
    HttpRequest req;
    req.target = {"127.0.0.1", port_, "/healthz"};
    return http_exchange(req, std::chrono::seconds(1)).status == 200;
  }

  HttpExchangeResult get(const std::string& target, size_t max_body = 64 << 20) const {
    HttpRequest req;
    req.target = {"127.0.0.1", port_, target};
    req.max_response_body = max_body;
    return http_exchange(req, std::chrono::seconds(60));
  }

  // "VmRSS" or "VmHWM" in KiB.
  long memory_kb(const char* field) const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    const std::string key = std::string(field) + ":";
    for (std::string line; std::getline(in, line);)
      if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + key.size());
    return -1;
  }

  // User + system CPU seconds so far.
  double cpu_seconds() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }

  uint64_t state_bytes() const {
    uint64_t n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ / "state", ec))
      if (e.is_regular_file(ec)) n += e.file_size(ec);
    return n;
  }

  // SIGTERM (the server drains) and the exit status.
  int stop() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  std::filesystem::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool keep_dir_ = false;
};

}  // namespace statherd::bench
