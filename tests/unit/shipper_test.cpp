// The HTTP shipper and spool delivery against a real (tiny, in-process) HTTP server on loopback.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <thread>

#include "agent/delivery.h"
#include "agent/shipper.h"
#include "agent/spool.h"

namespace statherd::agent {
namespace {

using namespace std::chrono_literals;

struct ReceivedRequest {
  std::string head;  // request line + headers
  std::string body;
  bool has_header(const std::string& line) const {
    return head.find("\r\n" + line + "\r\n") != std::string::npos;
  }
};

// Answers each accepted connection with the next status of `statuses` (or never answers when
// the status is 0), recording what it received.
class TinyHttpServer {
 public:
  explicit TinyHttpServer(std::vector<int> statuses) : statuses_(std::move(statuses)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TinyHttpServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/prefix"; }
  std::vector<ReceivedRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void serve() {
    for (int status : statuses_) {
      int conn = ::accept(fd_, nullptr, nullptr);
      if (conn < 0) return;
      ReceivedRequest req = read_request(conn);
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(req);
      }
      if (status != 0) {
        std::string res = "HTTP/1.1 " + std::to_string(status) +
                          " X\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope";
        (void)!::write(conn, res.data(), res.size());
      } else {
        char c;
        (void)!::read(conn, &c, 1);  // hold the connection until the client gives up
      }
      ::close(conn);
    }
  }
  static ReceivedRequest read_request(int conn) {
    std::string data;
    char buf[4096];
    size_t need = std::string::npos;
    while (data.size() < need) {
      ssize_t n = ::read(conn, buf, sizeof buf);
      if (n <= 0) break;
      data.append(buf, static_cast<size_t>(n));
      size_t end = data.find("\r\n\r\n");
      if (end != std::string::npos && need == std::string::npos) {
        size_t cl = data.find("Content-Length: ");
        size_t length = cl < end ? std::stoul(data.substr(cl + 16)) : 0;
        need = end + 4 + length;
      }
    }
    size_t end = data.find("\r\n\r\n");
    if (end == std::string::npos) return {data, ""};
    return {data.substr(0, end + 2), data.substr(end + 4)};
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::vector<int> statuses_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<ReceivedRequest> requests_;
};

HttpBatchSender make_sender(const std::string& url, std::chrono::milliseconds timeout = 5s) {
  return HttpBatchSender({*parse_server_url(url), "s3cret", "agent-7", timeout});
}

TEST(ServerUrl, ParsesHostPortAndPrefix) {
  auto u = parse_server_url("http://collector.example:8470/base/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "collector.example");
  EXPECT_EQ(u->port, 8470);
  EXPECT_EQ(u->ingest_target(), "/base/api/v1/ingest");
  EXPECT_EQ(parse_server_url("http://h")->port, 80);
  EXPECT_EQ(parse_server_url("http://[::1]:9")->host, "::1");
}

TEST(ServerUrl, RejectsHttpsAndNonsenseWithHint) {
  auto https = parse_server_url("https://h:443");
  ASSERT_FALSE(https.ok());
  EXPECT_NE(https.error().hint.find("http://"), std::string::npos);
  EXPECT_FALSE(parse_server_url("h:8470").ok());
  EXPECT_FALSE(parse_server_url("http://:8470").ok());
  EXPECT_FALSE(parse_server_url("http://h:0").ok());
  EXPECT_FALSE(parse_server_url("http://h:99999").ok());
}

TEST(Shipper, SendsHeadersAndBodyAndIsAckedBy200) {
  TinyHttpServer server({200});
  auto sender = make_sender(server.url());
  const std::string body("\x01\x02\0batch", 8);
  ShipResult r = sender.send(42, body);
  EXPECT_EQ(r.outcome, ShipOutcome::Acked) << r.detail;
  EXPECT_EQ(r.http_status, 200);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].head.rfind("POST /prefix/api/v1/ingest HTTP/1.1\r\n", 0), 0u) << reqs[0].head;
  EXPECT_TRUE(reqs[0].has_header("Authorization: Bearer s3cret"));
  EXPECT_TRUE(reqs[0].has_header("Content-Type: application/x-statherd-batch"));
  EXPECT_TRUE(reqs[0].has_header("X-Statherd-Agent: agent-7"));
  EXPECT_TRUE(reqs[0].has_header("X-Statherd-Seq: 42"));
  EXPECT_EQ(reqs[0].body, body);
}

TEST(Shipper, ClassifiesStatuses) {
  EXPECT_EQ(classify_http_status(200), ShipOutcome::Acked);
  EXPECT_EQ(classify_http_status(500), ShipOutcome::RetryLater);
  EXPECT_EQ(classify_http_status(503), ShipOutcome::RetryLater);
  EXPECT_EQ(classify_http_status(429), ShipOutcome::RetryLater);
  EXPECT_EQ(classify_http_status(401), ShipOutcome::Unauthorized);
  EXPECT_EQ(classify_http_status(403), ShipOutcome::Unauthorized);
  // Issue #9: these used to drop the batch. Only the server's own verdict may.
  for (int status : {400, 404, 405, 408, 409, 410, 418, 422, 302, 0})
    EXPECT_EQ(classify_http_status(status), ShipOutcome::RetryLater) << status;
  EXPECT_EQ(classify_http_status(413), ShipOutcome::TooLarge);
  EXPECT_EQ(classify_http_status(400, R"({"status":"error","verdict":"malformed_batch"})"),
            ShipOutcome::Malformed);
  // A 400 from a proxy, or a verdict on another status, is not the server's verdict.
  EXPECT_EQ(classify_http_status(400, "<html>Bad Request</html>"), ShipOutcome::RetryLater);
  EXPECT_EQ(classify_http_status(400, R"({"verdict":"other"})"), ShipOutcome::RetryLater);
  EXPECT_EQ(classify_http_status(400, R"(["verdict","malformed_batch"])"), ShipOutcome::RetryLater);
  EXPECT_EQ(classify_http_status(404, R"({"verdict":"malformed_batch"})"), ShipOutcome::RetryLater);
}

TEST(Shipper, ConnectionRefusedIsRetryLater) {
  uint16_t port = 0;
  {
    TinyHttpServer closed({});  // binds a port, serves nothing, closes it
    port = closed.port();
  }
  auto sender = make_sender("http://127.0.0.1:" + std::to_string(port));
  ShipResult r = sender.send(1, "x");
  EXPECT_EQ(r.outcome, ShipOutcome::RetryLater);
  EXPECT_EQ(r.http_status, 0);
}

TEST(Shipper, SilentServerHitsDeadlineAndIsRetryLater) {
  TinyHttpServer server({0});
  auto sender = make_sender(server.url(), 200ms);
  ShipResult r = sender.send(1, "x");
  EXPECT_EQ(r.outcome, ShipOutcome::RetryLater);
  EXPECT_EQ(r.http_status, 0);
  EXPECT_NE(r.detail.find("read response"), std::string::npos) << r.detail;
}

class DeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/statherd-delivery-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    spool_ = Spool::open(dir_ + "/spool", 1 << 20, 1).value();
    for (uint64_t seq = 1; seq <= 3; ++seq)
      ASSERT_TRUE(spool_->put(seq, "batch-" + std::to_string(seq)).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  SpoolDelivery delivery(BatchSender& sender) {
    return SpoolDelivery(*spool_, sender, Backoff(1s, 30s, 7));
  }
  std::string dir_;
  std::unique_ptr<Spool> spool_;
};

TEST_F(DeliveryTest, AcksInOrderAndStopsAtFirst500) {
  TinyHttpServer server({200, 500});
  auto sender = make_sender(server.url());
  auto d = delivery(sender);
  EXPECT_FALSE(d.drain(SteadyClock::now() + 60s));
  EXPECT_EQ(spool_->pending(), (std::vector<uint64_t>{2, 3}));
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].body, "batch-1");
  EXPECT_EQ(reqs[1].body, "batch-2");
  EXPECT_TRUE(d.backing_off());
  EXPECT_EQ(d.stats().acked, 1u);
  EXPECT_EQ(d.stats().failed_attempts, 1u);
  EXPECT_FALSE(d.drain(SteadyClock::now() + 60s));  // still backing off: no request
  EXPECT_EQ(server.requests().size(), 2u);
}

// Issue #9: a 400 without the server's verdict (here: body "nope") used to drop the batch.
TEST_F(DeliveryTest, KeepsBatchOnA400WithoutTheServersVerdict) {
  TinyHttpServer server({400, 200, 200, 200});
  auto sender = make_sender(server.url());
  auto d = delivery(sender);
  EXPECT_FALSE(d.drain(SteadyClock::now() + 60s));
  EXPECT_EQ(spool_->pending(), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_TRUE(d.backing_off());
  EXPECT_EQ(spool_->quarantine().count(), 0u);
  EXPECT_TRUE(d.drain(SteadyClock::now() + 60s, /*ignore_backoff=*/true));
  EXPECT_EQ(server.requests().size(), 4u);
  EXPECT_EQ(server.requests()[1].body, "batch-1");
  EXPECT_EQ(d.stats().acked, 3u);
}

TEST_F(DeliveryTest, KeepsBatchesOn401) {
  TinyHttpServer server({401});
  auto sender = make_sender(server.url());
  auto d = delivery(sender);
  EXPECT_FALSE(d.drain(SteadyClock::now() + 60s));
  EXPECT_EQ(spool_->pending(), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_TRUE(d.backing_off());
}

TEST_F(DeliveryTest, KeepsBatchesWhenServerIsDown) {
  uint16_t port = 0;
  {
    TinyHttpServer closed({});
    port = closed.port();
  }
  auto sender = make_sender("http://127.0.0.1:" + std::to_string(port));
  auto d = delivery(sender);
  EXPECT_FALSE(d.drain(SteadyClock::now() + 60s));
  EXPECT_EQ(spool_->pending(), (std::vector<uint64_t>{1, 2, 3}));
  // The shutdown flush ignores the backoff and tries again.
  TinyHttpServer server({200, 200, 200});
  auto sender2 = make_sender(server.url());
  auto d2 = delivery(sender2);
  EXPECT_TRUE(d2.drain(SteadyClock::now() + 60s, /*ignore_backoff=*/true));
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(Backoff, GrowsExponentiallyWithJitterUpToCap) {
  Backoff b(1s, 30s, 1);
  int64_t expected_max = 1000;
  for (int i = 0; i < 10; ++i) {
    auto d = b.next().count();
    EXPECT_GE(d, expected_max / 2);
    EXPECT_LE(d, expected_max);
    expected_max = std::min<int64_t>(expected_max * 2, 30'000);
  }
  b.reset();
  EXPECT_LE(b.next().count(), 1000);
}

}  // namespace
}  // namespace statherd::agent
