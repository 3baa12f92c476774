// Blocking-with-deadline TCP helpers of GraphiteSink's sender thread: connect, liveness, write.
#include "server/sinks/graphite_socket.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/yaml_util.h"

namespace statherd::server {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 1'000'000));
}

// Non-blocking connect to one resolved address, bounded by `deadline`. Returns fd or -1.
int connect_one(const addrinfo* ai, Clock::time_point deadline) {
  int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) return -1;
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return fd;
  if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    const int ready = ::poll(&p, 1, remaining_ms(deadline));
    if (ready == 1) {
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) return fd;
      errno = err;  // the connect's own error (ECONNREFUSED ...), not EINPROGRESS
    } else if (ready == 0) {
      errno = ETIMEDOUT;
    }
  }
  const int saved = errno;  // close() must not change what the caller reports
  ::close(fd);
  errno = saved;
  return -1;
}

}  // namespace

int connect_to(const std::string& address, Clock::time_point deadline, std::string& error) {
  auto hp = parse_host_port(address);
  if (!hp) {
    error = hp.error().message;
    return -1;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  std::string port = std::to_string(hp->port);
  if (int rc = ::getaddrinfo(hp->host.c_str(), port.c_str(), &hints, &list); rc != 0) {
    error = std::string("cannot resolve ") + hp->host + ": " + ::gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) fd = connect_one(ai, deadline);
  ::freeaddrinfo(list);
  if (fd < 0) error = "cannot connect to " + address + ": " + std::strerror(errno);
  return fd;
}

// True if the peer closed the connection (Carbon never sends us anything).
bool peer_closed(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) != 1) return false;
  if (p.revents & (POLLERR | POLLHUP | POLLRDHUP)) return true;
  char byte;
  return ::recv(fd, &byte, 1, MSG_DONTWAIT | MSG_PEEK) == 0;
}

// Writes all of `data` before `deadline`; blocks (polls) on a full socket buffer: that is how
// TCP backpressure slows this thread, never emit().
bool write_all(int fd, bool is_socket, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    pollfd p{fd, POLLOUT, 0};
    int ready = ::poll(&p, 1, remaining_ms(deadline));
    if (ready <= 0 || (p.revents & (POLLERR | POLLHUP))) return false;
    ssize_t n = is_socket ? ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT)
                          : ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace statherd::server
