// What keeps the accept loop of statherd-server sane when descriptors run out (issue: 2,000
// idle connections under systemd's default of 1,024 spun it at 100 % CPU and wrote 510 MB of
// log in 17 s): a connection cap that fits RLIMIT_NOFILE, a backoff after a failed accept,
// and log lines that say how often they were suppressed. No Beast code here.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

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

// The connections that are idle (connected with no request started, or kept alive between two
// requests), longest idle first. At the connection cap the server closes the longest-idle one
// to admit a new client, so sockets that never send a request cannot lock real clients out;
// a connection in the middle of a request or an answer is never in this set. One thread.
template <typename Connection>
class IdleConnections {
 public:
  // `c` is idle from now on (moved to the back if it already was).
  void mark_idle(Connection c) {
    mark_busy(c);
    where_.emplace(c, order_.insert(order_.end(), c));
  }
  // `c` started a request, or closed: no longer a candidate for eviction.
  void mark_busy(Connection c) {
    if (auto it = where_.find(c); it != where_.end()) {
      order_.erase(it->second);
      where_.erase(it);
    }
  }
  // The longest-idle connection, taken out of the set; nullopt when none is idle.
  std::optional<Connection> take_longest_idle() {
    if (order_.empty()) return std::nullopt;
    Connection c = order_.front();
    order_.pop_front();
    where_.erase(c);
    return c;
  }
  // The longest-idle connection, left in the set; nullopt when none is idle.
  std::optional<Connection> longest_idle() const {
    if (order_.empty()) return std::nullopt;
    return order_.front();
  }
  bool contains(Connection c) const { return where_.count(c) != 0; }
  size_t size() const { return order_.size(); }

 private:
  std::list<Connection> order_;  // longest idle first
  std::unordered_map<Connection, typename std::list<Connection>::iterator> where_;
};

}  // namespace statherd::server
