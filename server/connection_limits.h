// What keeps the accept loop of statherd-server sane when descriptors run out (issue: 2,000
// idle connections under systemd's default of 1,024 spun it at 100 % CPU and wrote 510 MB of
// log in 17 s): a connection cap that fits RLIMIT_NOFILE, a backoff after a failed accept,
// and log lines that say how often they were suppressed. No Beast code here.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace statherd::server {

// The cap to use: `wanted`, lowered so that open connections leave `reserve` descriptors free
// (for the WAL, snapshots and sinks) under the soft limit `nofile` with `open_fds` in use; at
// least 1. `why` says what was lowered and why (empty if nothing was).
uint32_t fit_connection_cap(uint32_t wanted, uint64_t nofile, uint64_t open_fds,
                            std::string& why, uint64_t reserve = 32);
// The same for this process (getrlimit, /proc/self/fd).
uint32_t fit_connection_cap(uint32_t wanted, std::string& why);

// At most one line per `every`; the next one says how many were suppressed meanwhile.
class RateLimitedLine {
 public:
  explicit RateLimitedLine(std::chrono::milliseconds every = std::chrono::seconds(10))
      : every_(every) {}
  // The line to log now, or nullopt (counted as suppressed).
  std::optional<std::string> take(const std::string& line, std::chrono::steady_clock::time_point now);

 private:
  std::chrono::milliseconds every_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  uint64_t suppressed_ = 0;
};

// After a failed accept: how long to wait before the next one. Running out of descriptors or
// memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) backs off from 10 ms doubling to 1 s; any other
// error waits 10 ms, so no error can make the loop spin. A successful accept resets it.
class AcceptBackoff {
 public:
  std::chrono::milliseconds on_error(int error_number);
  void on_success() { delay_ = std::chrono::milliseconds(0); }

 private:
  std::chrono::milliseconds delay_{0};
};

}  // namespace statherd::server
