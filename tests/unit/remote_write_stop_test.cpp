// RemoteWriteSink::stop() ends near its stop_timeout even while a request waits for a receiver
// that never answers (hostile review: a SIGTERM took stop_timeout + remote_write.timeout).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>

#include "remote_write_test_util.h"
#include "server/sinks/remote_write.h"

namespace statherd::server {
namespace {

using testing::fast_options;
using testing::series;

// A loopback port that accepts connections (the kernel's backlog) and never answers.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// The request's own timeout (90 s) is cut at the stop deadline (100 ms). The 45 s bound is a
// liveness check far from both figures, not a timing measurement.
TEST(RemoteWriteSink, StopEndsAtTheStopDeadlineWhileTheReceiverNeverAnswers) {
  SilentListener silent;
  RemoteWriteSinkOptions o = fast_options(silent.port());
  o.timeout = std::chrono::seconds(90);
  o.stop_timeout = std::chrono::milliseconds(100);
  RemoteWriteSink sink(o);
  sink.enqueue({series({{"__name__", "x"}}, {{1, 1000}})});
  auto stopped = std::async(std::launch::async, [&] { sink.stop(); });
  ASSERT_EQ(stopped.wait_for(std::chrono::seconds(45)), std::future_status::ready);
  const auto c = sink.counters();
  EXPECT_EQ(c.samples_sent, 0u);
  EXPECT_EQ(c.samples_dropped, 1u);
}

}  // namespace
}  // namespace statherd::server
