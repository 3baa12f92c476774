#include "server/sinks/graphite.h"
#include "rollup_test_util.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

namespace statherd::server {
namespace {

using namespace std::chrono_literals;

// A raw TCP listener on 127.0.0.1 that records every line it receives.
class LineListener {
 public:
  explicit LineListener(uint16_t port = 0) { open(port); }
  ~LineListener() { close(); }

  void open(uint16_t port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 8), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  // Closes the listener and every accepted connection.
  void close() {
    if (listen_fd_ < 0) return;
    ::shutdown(listen_fd_, SHUT_RDWR);
    {
      std::lock_guard lock(mutex_);
      if (conn_fd_ >= 0) ::shutdown(conn_fd_, SHUT_RDWR);
    }
    thread_.join();
    ::close(listen_fd_);
    listen_fd_ = -1;
  }

  uint16_t port() const { return port_; }

  std::vector<std::string> wait_for_lines(size_t n) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 20s, [&] { return lines_.size() >= n; });
    return lines_;
  }

 private:
  void serve() {
    while (true) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      {
        std::lock_guard lock(mutex_);
        conn_fd_ = fd;
      }
      std::string partial;
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        partial.append(buf, static_cast<size_t>(n));
        std::lock_guard lock(mutex_);
        for (size_t nl; (nl = partial.find('\n')) != std::string::npos; partial.erase(0, nl + 1)) {
          lines_.push_back(partial.substr(0, nl));
        }
        changed_.notify_all();
      }
      std::lock_guard lock(mutex_);
      ::close(fd);
      conn_fd_ = -1;
    }
  }

  int listen_fd_ = -1;
  int conn_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> lines_;
};

IntervalOutput output(int64_t start_s, std::vector<std::pair<std::string, double>> metrics) {
  IntervalOutput out;
  out.start_s = start_s;
  for (auto& [metric, value] : metrics) {
    SeriesPoint p;
    p.app = "web";
    p.metric = metric;
    p.stat = "count";
    p.value = value;
    testing::append_point(out, p);
  }
  return out;
}

GraphiteSinkOptions fast_options(std::string address) {
  GraphiteSinkOptions o;
  o.address = std::move(address);
  o.backoff_initial = 10ms;
  o.backoff_max = 50ms;
  o.stop_timeout = 5s;
  return o;
}

TEST(GraphiteValue, ShortestRoundTripAndNoNonFinite) {
  EXPECT_EQ(format_graphite_value(0.1), "0.1");
  EXPECT_EQ(format_graphite_value(42), "42");
  EXPECT_EQ(format_graphite_value(-2.5), "-2.5");
  EXPECT_EQ(format_graphite_value(1e21), "1e+21");
  EXPECT_EQ(format_graphite_value(std::nan("")), std::nullopt);
  EXPECT_EQ(format_graphite_value(INFINITY), std::nullopt);
  EXPECT_EQ(format_graphite_value(-INFINITY), std::nullopt);
}

TEST(GraphiteSink, SendsLinesExactly) {
  LineListener carbon;
  GraphiteSink sink(fast_options("127.0.0.1:" + std::to_string(carbon.port())));
  sink.emit(output(1700000000, {{"req", 5}, {"lat.p99", 0.25}, {"bad", std::nan("")}}));
  auto lines = carbon.wait_for_lines(2);
  EXPECT_EQ(lines, (std::vector<std::string>{"statherd.web.req.count 5 1700000000",
                                             "statherd.web.lat.p99.count 0.25 1700000000"}));
  sink.stop();
  auto c = sink.counters();
  EXPECT_EQ(c.lines_sent, 2u);
  EXPECT_EQ(c.non_finite_skipped, 1u);
  EXPECT_EQ(c.lines_dropped, 0u);
}

// An emit of many hand-off blocks (1 MB of text each: ~10 MB, ~200k lines here) reaches carbon
// whole and in order, the first emit (no size estimate yet) as well as the next.
TEST(GraphiteSink, AnEmitLargerThanAHandOffBlockArrivesWholeAndInOrder) {
  LineListener carbon;
  GraphiteSink sink(fast_options("127.0.0.1:" + std::to_string(carbon.port())));
  constexpr int kMetrics = 200'000;
  for (int64_t start : {1700000000, 1700000010}) {
    std::vector<std::pair<std::string, double>> metrics;
    metrics.reserve(kMetrics);
    for (int i = 0; i < kMetrics; ++i)
      metrics.emplace_back("some.longer.metric.name_" + std::to_string(i), i + start % 7);
    sink.emit(output(start, metrics));
  }
  auto lines = carbon.wait_for_lines(2 * kMetrics);
  ASSERT_EQ(lines.size(), 2u * kMetrics);
  for (int e = 0; e < 2; ++e) {
    const int64_t start = 1700000000 + 10 * e;
    for (int i = 0; i < kMetrics; i += 997) {
      EXPECT_EQ(lines[size_t(e) * kMetrics + size_t(i)],
                "statherd.web.some.longer.metric.name_" + std::to_string(i) + ".count " +
                    std::to_string(i + start % 7) + " " + std::to_string(start));
    }
    EXPECT_EQ(lines[size_t(e) * kMetrics + kMetrics - 1],
              "statherd.web.some.longer.metric.name_" + std::to_string(kMetrics - 1) +
                  ".count " + std::to_string(kMetrics - 1 + start % 7) + " " +
                  std::to_string(start));
  }
  sink.stop();
  EXPECT_EQ(sink.counters().lines_sent, 2u * kMetrics);
  EXPECT_EQ(sink.counters().lines_dropped, 0u);
}

TEST(GraphiteSink, ReconnectsWhenListenerComesBack) {
  auto carbon = std::make_unique<LineListener>();
  uint16_t port = carbon->port();
  GraphiteSink sink(fast_options("127.0.0.1:" + std::to_string(port)));
  sink.emit(output(10, {{"a", 1}}));
  EXPECT_EQ(carbon->wait_for_lines(1).size(), 1u);
  carbon.reset();  // Carbon goes away
  sink.emit(output(20, {{"a", 2}}));
  carbon = std::make_unique<LineListener>(port);  // and comes back
  auto lines = carbon->wait_for_lines(1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "statherd.web.a.count 2 20");
  sink.stop();
  EXPECT_GE(sink.counters().connects, 2u);
}

TEST(GraphiteSink, BoundedQueueDropsOldestAndCounts) {
  uint16_t dead_port;
  {
    LineListener reserve;  // a port nobody listens on once this closes
    dead_port = reserve.port();
  }
  GraphiteSinkOptions o = fast_options("127.0.0.1:" + std::to_string(dead_port));
  o.queue_max_lines = 3;
  o.stop_timeout = 100ms;
  GraphiteSink sink(o);
  sink.emit(output(10, {{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}, {"e", 5}}));
  EXPECT_EQ(sink.counters().lines_dropped, 2u);
  sink.stop();
  auto c = sink.counters();
  EXPECT_EQ(c.lines_sent, 0u);
  EXPECT_EQ(c.lines_dropped, 5u);  // the rest is dropped when the stop deadline passes
  EXPECT_GE(c.connect_failures, 1u);
}

// The sender sits in a 10-minute reconnect backoff when the stop comes: stop() must end at
// its stop_timeout, not at the backoff's end (a SIGTERM took 22 s with Carbon down). The
// 60 s bound is a liveness check far from both figures, not a timing measurement.
TEST(GraphiteSink, StopDuringALongBackoffEndsAtTheStopDeadline) {
  uint16_t dead_port;
  {
    LineListener reserve;
    dead_port = reserve.port();
  }
  GraphiteSinkOptions o = fast_options("127.0.0.1:" + std::to_string(dead_port));
  o.backoff_initial = std::chrono::minutes(10);
  o.backoff_max = std::chrono::minutes(10);
  o.stop_timeout = 100ms;
  GraphiteSink sink(o);
  sink.emit(output(10, {{"a", 1}, {"b", 2}}));
  while (sink.counters().connect_failures == 0) std::this_thread::sleep_for(1ms);
  auto stopped = std::async(std::launch::async, [&] { sink.stop(); });
  ASSERT_EQ(stopped.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_EQ(sink.counters().lines_dropped, 2u);
  EXPECT_EQ(sink.counters().lines_sent, 0u);
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(GraphiteSink, DashWritesToStdout) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  GraphiteSinkOptions o = fast_options("-");
  o.stdout_fd = fds[1];
  {
    GraphiteSink sink(o);
    sink.emit(output(30, {{"x", 1.5}}));
    sink.stop();
  }
  ::close(fds[1]);
  EXPECT_EQ(read_all(fds[0]), "statherd.web.x.count 1.5 30\n");
  ::close(fds[0]);
}

TEST(GraphiteSink, PacesNewSeriesWithoutDelayingKnownOnes) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  GraphiteSinkOptions o = fast_options("-");
  o.stdout_fd = fds[1];
  o.max_new_series_per_minute = 2;  // one token per 30 s: the test never earns a new one
  o.stop_timeout = 100ms;
  GraphiteSink sink(o);
  sink.emit(output(10, {{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}}));
  sink.emit(output(20, {{"a", 5}}));
  sink.stop();
  ::close(fds[1]);
  EXPECT_EQ(read_all(fds[0]),
            "statherd.web.a.count 1 10\nstatherd.web.b.count 2 10\nstatherd.web.a.count 5 20\n");
  ::close(fds[0]);
  auto c = sink.counters();
  EXPECT_EQ(c.lines_delayed, 2u);
  EXPECT_EQ(c.lines_dropped, 2u);
}

TEST(GraphiteSink, TagsAndRulesShapeTheOutput) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  GraphiteSinkOptions o = fast_options("-");
  o.stdout_fd = fds[1];
  o.tags = true;
  std::vector<GraphiteRule> rules;
  for (auto [kind, re] : std::vector<std::pair<std::string, std::string>>{
           {"allow", "^statherd\\.web\\."}, {"forbid", "\\.secret\\."},
           {"prune", "^statherd\\.web\\.junk$"}}) {
    auto rule = make_graphite_rule(kind, re);
    ASSERT_TRUE(rule) << rule.error().message;
    rules.push_back(std::move(*rule));
  }
  o.rules = GraphiteRules(std::move(rules));
  std::vector<SeriesPoint> points =
      flat_points(output(40, {{"req", 7}, {"secret.key", 1}, {"junk.x", 2}}));
  points[0].tags = {{"dc", "eu 1"}, {"route", "a=b;c"}};
  SeriesPoint other = points[0];
  other.app = "db";  // not allowed by any rule: whitelist mode forbids it
  points.push_back(other);
  IntervalOutput out = testing::output_of(40, 10, points);
  {
    GraphiteSink sink(o);
    sink.emit(out);
    sink.stop();
    EXPECT_EQ(sink.counters().lines_filtered, 3u);
    EXPECT_EQ(sink.counters().lines_sent, 1u);
  }
  ::close(fds[1]);
  EXPECT_EQ(read_all(fds[0]), "statherd.web.req.count;dc=eu_1;route=a_b_c 7 40\n");
  ::close(fds[0]);
}

// SIGHUP: lines queued for a dead Carbon are not lost when the address changes; they go to the
// new one, followed by lines formatted with the new prefix and rules.
TEST(GraphiteSink, ReconfigureMovesTheQueueToTheNewAddress) {
  LineListener probe;  // a port with nothing listening once closed
  const uint16_t dead_port = probe.port();
  probe.close();
  GraphiteSink sink(fast_options("127.0.0.1:" + std::to_string(dead_port)));
  sink.emit(output(1700000000, {{"a", 1}, {"b", 2}}));
  LineListener carbon;
  GraphiteSinkOptions next = fast_options("127.0.0.1:" + std::to_string(carbon.port()));
  next.prefix = "new";
  next.rules = GraphiteRules({*make_graphite_rule("forbid", "\\.b\\.count$")});
  sink.reconfigure(next);
  sink.emit(output(1700000010, {{"a", 3}, {"b", 4}}));
  auto lines = carbon.wait_for_lines(3);
  EXPECT_EQ(lines, (std::vector<std::string>{"statherd.web.a.count 1 1700000000",
                                             "statherd.web.b.count 2 1700000000",
                                             "new.web.a.count 3 1700000010"}));
  sink.stop();
  auto c = sink.counters();
  EXPECT_EQ(c.lines_sent, 3u);
  EXPECT_EQ(c.lines_dropped, 0u);
  EXPECT_EQ(c.lines_filtered, 1u);
  EXPECT_EQ(sink.options().prefix, "new");
}

TEST(GraphiteSink, ReconfigureToASmallerQueueDropsTheOldest) {
  LineListener probe;
  const uint16_t dead_port = probe.port();
  probe.close();
  GraphiteSinkOptions o = fast_options("127.0.0.1:" + std::to_string(dead_port));
  o.stop_timeout = 100ms;
  GraphiteSink sink(o);
  sink.emit(output(1700000000, {{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}}));
  o.queue_max_lines = 1;
  sink.reconfigure(o);
  auto c = sink.counters();
  // The sender may hold a batch in flight; what is still queued is at most the new bound.
  EXPECT_LE(c.queue_depth, 1u);
  sink.stop();
  c = sink.counters();
  EXPECT_EQ(c.lines_sent, 0u);
  EXPECT_EQ(c.lines_dropped, 4u);  // every line accounted for: queued == dropped (none sent)
}

// The queue holds each emit's lines as one block; its bound still counts lines across blocks
// (the oldest go first, even from the middle of a block), and small batches split a block.
TEST(GraphiteSink, QueueBoundCountsLinesAcrossEmitsAndSmallBatchesSplitThem) {
  LineListener probe;
  const uint16_t dead_port = probe.port();
  probe.close();
  GraphiteSinkOptions o = fast_options("127.0.0.1:" + std::to_string(dead_port));
  o.queue_max_lines = 3;
  o.batch_bytes = 1;  // one line per write
  GraphiteSink sink(o);
  sink.emit(output(1700000000, {{"a", 1}, {"b", 2}}));
  sink.emit(output(1700000010, {{"c", 3}, {"d", 4}}));
  // "a" is dropped as the oldest, unless the sender already held it (in flight, retrying).
  EXPECT_LE(sink.counters().lines_dropped, 1u);
  LineListener carbon;
  o.address = "127.0.0.1:" + std::to_string(carbon.port());
  sink.reconfigure(o);
  sink.stop();  // flushes everything queued to carbon
  auto c = sink.counters();
  EXPECT_EQ(c.lines_sent + c.lines_dropped, 4u);
  EXPECT_GE(c.lines_sent, 3u);
  auto lines = carbon.wait_for_lines(c.lines_sent);
  ASSERT_EQ(lines.size(), c.lines_sent);
  EXPECT_EQ(std::vector<std::string>(lines.end() - 3, lines.end()),
            (std::vector<std::string>{"statherd.web.b.count 2 1700000000",
                                      "statherd.web.c.count 3 1700000010",
                                      "statherd.web.d.count 4 1700000010"}));
  EXPECT_EQ(c.lines_queued, 4u);
}

}  // namespace
}  // namespace statherd::server
