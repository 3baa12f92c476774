// RemoteWriteSink::stop(): a request started while stopping ends at the stop deadline, not at its
// own timeout (hostile review: a SIGTERM took stop_timeout + remote_write.timeout).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

#include "remote_write_test_util.h"
#include "server/sinks/remote_write.h"

namespace statherd::server {
namespace {

using testing::fast_options;
using testing::series;

// A loopback receiver that answers its first request 503 and then never answers again: later
// connections wait in the kernel's backlog.
class AnswersOnceThenSilent {
 public:
  AnswersOnceThenSilent() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      ::recv(c, buf, sizeof buf, 0);  // the head (the answer does not depend on the rest)
      static const char kAnswer[] =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      ::send(c, kAnswer, sizeof kAnswer - 1, MSG_NOSIGNAL);
      ::close(c);
    });
  }
  ~AnswersOnceThenSilent() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

// The first attempt is answered 503; the stop comes during the 1 s backoff, so the retry starts
// after the stop, before its deadline (5 s). Its own timeout (90 s) is cut at that deadline
// (before: the stop took the whole 90 s). The 45 s bound is a liveness check far from both
// figures, not a timing measurement.
TEST(RemoteWriteSink, ARetryStartedWhileStoppingEndsAtTheStopDeadline) {
  AnswersOnceThenSilent receiver;
  RemoteWriteSinkOptions o = fast_options(receiver.port());
  o.timeout = std::chrono::seconds(90);
  o.backoff_initial = o.backoff_max = std::chrono::seconds(1);
  o.stop_timeout = std::chrono::seconds(5);
  RemoteWriteSink sink(o);
  sink.enqueue({series({{"__name__", "x"}}, {{1, 1000}})});
  while (sink.counters().requests == 0) std::this_thread::yield();  // the 503 came back
  auto stopped = std::async(std::launch::async, [&] { sink.stop(); });
  ASSERT_EQ(stopped.wait_for(std::chrono::seconds(45)), std::future_status::ready);
  const auto c = sink.counters();
  EXPECT_EQ(c.samples_sent, 0u);
  EXPECT_EQ(c.samples_dropped, 1u);
  EXPECT_GE(c.retries, 1u);
}

}  // namespace
}  // namespace statherd::server
