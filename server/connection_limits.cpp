#include "server/connection_limits.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

namespace statherd::server {

uint32_t fit_connection_cap(uint32_t wanted, uint64_t nofile, uint64_t open_fds,
                            std::string& why, uint64_t reserve) {
  why.clear();
  uint64_t room = nofile > open_fds + reserve ? nofile - open_fds - reserve : 1;
  if (room >= wanted) return wanted;
  uint32_t cap = static_cast<uint32_t>(std::max<uint64_t>(1, room));
  why = "max_connections " + std::to_string(wanted) + " lowered to " + std::to_string(cap) +
        ": the descriptor limit (RLIMIT_NOFILE) is " + std::to_string(nofile) + " with " +
        std::to_string(open_fds) + " in use and " + std::to_string(reserve) +
        " kept for the WAL and sinks\nhint: raise it (LimitNOFILE= in the systemd unit, "
        "ulimit -n) or lower limits.max_connections";
  return cap;
}

uint32_t fit_connection_cap(uint32_t wanted, std::string& why) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    why.clear();
    return wanted;
  }
  std::error_code ec;
  uint64_t open_fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++open_fds;
  }
  return fit_connection_cap(wanted, limit.rlim_cur, open_fds, why);
}

std::optional<std::string> RateLimitedLine::take(const std::string& line,
                                                 std::chrono::steady_clock::time_point now) {
  if (last_ && now - *last_ < every_) {
    ++suppressed_;
    return std::nullopt;
  }
  last_ = now;
  std::string out = line;
  if (suppressed_ > 0) {
    out += " (" + std::to_string(suppressed_) + " more since the last such line)";
  }
  suppressed_ = 0;
  return out;
}

std::chrono::milliseconds AcceptBackoff::on_error(int error_number) {
  using std::chrono::milliseconds;
  const bool exhausted = error_number == EMFILE || error_number == ENFILE ||
                         error_number == ENOBUFS || error_number == ENOMEM;
  if (!exhausted) return delay_ = milliseconds(10);
  delay_ = std::clamp(delay_ * 2, milliseconds(10), milliseconds(1000));
  return delay_;
}

}  // namespace statherd::server
