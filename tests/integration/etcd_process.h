// One real etcd member (Debian's etcd-server) for the C++ integration tests: started on free
// loopback ports (or a given client port) with a temp data dir, ready when /health says so,
// stopped by its pid and its dir removed with it.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "tests/loopback_port.h"

namespace statherd::itest {

using namespace std::chrono_literals;

// Polls `what` every 50 ms for up to `limit`; its last answer.
inline bool eventually(const std::function<bool()>& what, std::chrono::milliseconds limit = 20s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (what()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return what();
}

inline uint16_t free_port() {
  return test::unused_loopback_port();
}

// One etcd member on loopback; its data dir is removed with it.
class EtcdProcess {
 public:
  // client_port 0: a free one.
  explicit EtcdProcess(uint16_t client_port = 0) {
    char tmpl[] = "/tmp/statherd-etcd-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;  // not ready(): the test says so
    dir_ = tmpl;
    client_ = client_port != 0 ? client_port : free_port();
    uint16_t peer = free_port();
    while (peer == client_) peer = free_port();
    const std::string c = "http://127.0.0.1:" + std::to_string(client_);
    const std::string p = "http://127.0.0.1:" + std::to_string(peer);
    std::vector<std::string> argv = {"etcd",
                                     "--name",
                                     "t",
                                     "--data-dir",
                                     dir_ + "/data",
                                     "--listen-client-urls",
                                     c,
                                     "--advertise-client-urls",
                                     c,
                                     "--listen-peer-urls",
                                     p,
                                     "--initial-advertise-peer-urls",
                                     p,
                                     "--initial-cluster",
                                     "t=" + p,
                                     "--logger",
                                     "zap",
                                     "--log-outputs",
                                     dir_ + "/etcd.log"};
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test that crashes leaves no etcd behind
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      const std::string out = dir_ + "/etcd.out";  // its own chatter stays out of the test's
      const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execvp("etcd", args.data());
      ::_exit(127);
    }
    // Ready when /health answers 200 (etcd has a leader); give up after 30 s.
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;  // etcd exited (127: not installed)
      }
      HttpRequest req;
      req.target = {"127.0.0.1", client_, "/health"};
      auto r = http_exchange(req, 1s);
      if (r.ok() && r.status == 200 && r.body.find("true") != std::string::npos) {
        ready_ = true;
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
  }
  ~EtcdProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool ready() const { return ready_; }
  uint16_t port() const { return client_; }
  std::string log() const {
    std::string out;
    if (FILE* f = std::fopen((dir_ + "/etcd.log").c_str(), "r")) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
      std::fclose(f);
    }
    return out.size() > 4000 ? out.substr(out.size() - 4000) : out;
  }

 private:
  std::string dir_;
  uint16_t client_ = 0;
  pid_t pid_ = -1;
  bool ready_ = false;
};

}  // namespace statherd::itest
