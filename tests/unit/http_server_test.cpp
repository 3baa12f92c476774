#include "server/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <future>
#include <thread>

#include "common/wire.h"
#include "http_test_client.h"
#include "running_server.h"

namespace statherd::server {
namespace {

using testing::HttpReply;
using testing::request;

constexpr int64_t kNowMs = 1'700'000'005'000;

// Records what the server hands to its sinks.
class RecordingSink : public Sink {
 public:
  std::string name() const override { return "recording"; }
  void emit(const IntervalOutput& out) override { outputs.push_back(out); }
  std::vector<IntervalOutput> outputs;
};

std::string gauge_batch(uint64_t seq) {
  Batch batch;
  batch.agent_id = "agent-1";
  batch.seq = seq;
  batch.sent_ms = kNowMs;
  SourceSamples ss;
  ss.id = SourceIdentity{"h1", "web", 42, 1000, "/tmp/web-42-42.mmstats"};
  Sample s;
  s.name = "queue.depth";
  s.kind = Kind::Gauge;
  s.value = 7;
  s.timestamp_ms = kNowMs;
  ss.samples.push_back(s);
  batch.sources.push_back(ss);
  return encode_batch(batch);
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineOptions eo;
    eo.fsync = false;
    engine_ = std::make_unique<Engine>(eo);
    ASSERT_TRUE(engine_->open(kNowMs).ok());
    make_routes({});
    start(default_options());
  }
  void make_routes(ApiRoutesOptions options) {
    routes_ = std::make_unique<ApiRoutes>(token_, *engine_, store_, [] { return kNowMs; },
                                          std::move(options));
  }
  static HttpServerOptions default_options() {
    HttpServerOptions ho;
    ho.port = 0;
    ho.max_body_bytes = 4096;
    ho.max_read_body_bytes = 1024;
    ho.max_connections = 3;
    return ho;
  }
  void start(const HttpServerOptions& ho) {
    PipelineOptions po;
    po.now_ms = [] { return kNowMs; };
    server_ = std::make_unique<testing::RunningServer>(ho, po, *engine_, store_,
                                                       std::vector<Sink*>{&sink_}, *routes_);
    port_ = server_->port();
  }
  void TearDown() override { stop(); }
  void stop() {
    if (server_) server_->stop();
  }

  IngestToken token_{"s3cret"};
  MemoryStore store_{{}};
  RecordingSink sink_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ApiRoutes> routes_;
  std::unique_ptr<testing::RunningServer> server_;
  uint16_t port_ = 0;
};

TEST_F(HttpServerTest, IngestWithoutOrWithWrongTokenIs401) {
  HttpReply none = request(port_, "POST", "/api/v1/ingest", gauge_batch(1));
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(nlohmann::json::parse(none.body)["status"], "error");
  HttpReply wrong = request(port_, "POST", "/api/v1/ingest", gauge_batch(1),
                            "Authorization: Bearer s3creT\r\n");
  EXPECT_EQ(wrong.status, 401);
}

TEST_F(HttpServerTest, IngestAcceptsThenReportsDuplicate) {
  const std::string auth = "Authorization: Bearer s3cret\r\n";
  HttpReply first = request(port_, "POST", "/api/v1/ingest", gauge_batch(1), auth);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(nlohmann::json::parse(first.body),
            nlohmann::json::parse(R"({"status":"ok","duplicate":false,"samples":1})"));
  HttpReply again = request(port_, "POST", "/api/v1/ingest", gauge_batch(1), auth);
  EXPECT_EQ(nlohmann::json::parse(again.body)["duplicate"], true);
  HttpReply garbage = request(port_, "POST", "/api/v1/ingest", "not a batch", auth);
  EXPECT_EQ(garbage.status, 400);
}

TEST_F(HttpServerTest, BodyOverLimitIs413) {
  HttpReply r = request(port_, "POST", "/api/v1/ingest", std::string(8192, 'x'),
                        "Authorization: Bearer s3cret\r\n");
  EXPECT_EQ(r.status, 413);
}

// Beast refuses a Content-Length over the parser's limit while it reads the header, before
// the route is known: the answer still names the route's limit (hostile review: "request body
// over 0 bytes", with the hint of max_read_body_bytes, for an ingest over max_body_bytes).
TEST_F(HttpServerTest, ContentLengthOver413NamesTheRightLimit) {
  HttpReply ingest = request(port_, "POST", "/api/v1/ingest", std::string(8192, 'x'),
                             "Authorization: Bearer s3cret\r\n");
  EXPECT_EQ(ingest.status, 413);
  EXPECT_NE(ingest.body.find("request body over 4096 bytes"), std::string::npos) << ingest.body;
  EXPECT_NE(ingest.body.find("limits.max_body_bytes"), std::string::npos) << ingest.body;
  HttpReply render = request(port_, "POST", "/render", std::string(8192, 'x'));
  EXPECT_EQ(render.status, 413);
  EXPECT_NE(render.body.find("request body over 1024 bytes"), std::string::npos) << render.body;
  EXPECT_NE(render.body.find("limits.max_read_body_bytes"), std::string::npos) << render.body;
}

TEST_F(HttpServerTest, UnknownPathAndWrongMethod) {
  EXPECT_EQ(request(port_, "GET", "/nope").status, 404);
  HttpReply r = request(port_, "GET", "/api/v1/ingest");
  EXPECT_EQ(r.status, 405);
  EXPECT_NE(r.head.find("Allow: POST"), std::string::npos) << r.head;
  EXPECT_EQ(request(port_, "GET", "/healthz").status, 200);
  EXPECT_EQ(request(port_, "GET", "/api/v1/sources").status, 200);
  EXPECT_EQ(request(port_, "GET", "/render?target=a.b&from=-1zz").status, 400);
}

TEST_F(HttpServerTest, ShutdownDrainsToSinksAndStore) {
  ASSERT_EQ(request(port_, "POST", "/api/v1/ingest", gauge_batch(1),
                    "Authorization: Bearer s3cret\r\n").status, 200);
  stop();
  size_t points = 0;
  for (const IntervalOutput& out : sink_.outputs) points += out.point_count();
  EXPECT_GT(points, 0u);
  nlohmann::json found = store_.find("statherd.web.queue.depth.*");
  EXPECT_FALSE(found.empty()) << found.dump();
}

// Sends `head` (no body) on a new connection and returns the answer's status, or 0 when the
// server does not answer within 5 s.
int status_of_head_only(uint16_t port, const std::string& head, int* fd_out = nullptr) {
  int fd = testing::connect_loopback(port, 5);
  ::send(fd, head.data(), head.size(), MSG_NOSIGNAL);
  char buf[512];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (fd_out) *fd_out = fd;
  else ::close(fd);
  if (n < 12) return 0;
  return std::stoi(std::string(buf + 9, 3));
}

TEST_F(HttpServerTest, ReadRoutesGetTheSmallBodyLimitBeforeTheBodyIsRead) {
  // Content-Length over max_read_body_bytes: 413 at once, no body sent at all.
  EXPECT_EQ(status_of_head_only(port_, "POST /render HTTP/1.1\r\nHost: x\r\n"
                                       "Content-Length: 100000\r\n\r\n"),
            413);
  HttpReply render = request(port_, "POST", "/render", std::string(2000, 'x'));
  EXPECT_EQ(render.status, 413) << render.body;
  EXPECT_NE(render.body.find("limits.max_read_body_bytes"), std::string::npos) << render.body;
  // Ingest keeps max_body_bytes: the same 2,000 bytes are read and judged (400: not a batch).
  HttpReply ingest = request(port_, "POST", "/api/v1/ingest", std::string(2000, 'x'),
                             "Authorization: Bearer s3cret\r\n");
  EXPECT_EQ(ingest.status, 400) << ingest.body;
}

int connect_to(uint16_t port) { return testing::connect_loopback(port, 5); }

// A connection in the middle of its second request: the first (pipelined with the start of
// the second) is answered, so the server has read both.
// A keep-alive client that was answered once and is now in the body of an authenticated
// ingest (never evicted; a header still coming in, or an unauthenticated body, is). `rest`
// completes the request.
struct MidRequest {
  int fd = -1;
  std::string rest;
};
MidRequest connect_mid_request(uint16_t port, uint64_t seq = 7) {
  MidRequest m;
  m.fd = connect_to(port);
  const std::string body = gauge_batch(seq);
  std::string requests = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                         "POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         "Authorization: Bearer s3cret\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, body.size() / 2);
  m.rest = body.substr(body.size() / 2);
  ::send(m.fd, requests.data(), requests.size(), MSG_NOSIGNAL);
  char buf[4096];
  EXPECT_GT(::read(m.fd, buf, sizeof buf), 12);
  return m;
}

// 1: the server closed fd (EOF); 0: still open, nothing to read; -1: data or an error.
int closed_by_server(int fd, bool wait) {
  char ch;
  ssize_t n = ::recv(fd, &ch, 1, wait ? 0 : MSG_DONTWAIT);
  if (n == 0) return 1;
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
}

TEST_F(HttpServerTest, ConnectionsOverTheCapAreClosedAndServedAgainOnceOthersClose) {
  EXPECT_EQ(server_->status.max_connections.load(), 3u);
  // Connections in the middle of a request are never evicted: the fourth is accepted and
  // closed without an answer, until one of the three goes away.
  std::vector<int> busy;
  for (int i = 0; i < 3; ++i) busy.push_back(connect_mid_request(port_, 10 + i).fd);
  int status = 200;
  for (int attempt = 0; attempt < 100 && status != 0; ++attempt) {
    status = status_of_head_only(port_, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  EXPECT_EQ(status, 0);
  ::close(busy.back());
  busy.pop_back();
  for (int attempt = 0; attempt < 100 && status != 200; ++attempt) {
    status = request(port_, "GET", "/healthz").status;
  }
  EXPECT_EQ(status, 200);
  for (int fd : busy) EXPECT_EQ(closed_by_server(fd, false), 0);
  for (int fd : busy) ::close(fd);
}

TEST_F(HttpServerTest, AtTheCapTheLongestIdleConnectionMakesRoomForANewClient) {
  MidRequest mid = connect_mid_request(port_);  // the oldest, but in a request: never evicted
  int busy = mid.fd;
  std::vector<int> idle{connect_to(port_), connect_to(port_)};  // send nothing
  EXPECT_EQ(request(port_, "GET", "/healthz").status, 200);
  EXPECT_EQ(closed_by_server(idle[0], true), 1);  // the longest idle made room
  EXPECT_EQ(closed_by_server(idle[1], false), 0);
  idle.push_back(connect_to(port_));
  HttpReply ingest = request(port_, "POST", "/api/v1/ingest", gauge_batch(1),
                             "Authorization: Bearer s3cret\r\n");
  EXPECT_EQ(ingest.status, 200) << ingest.body;
  EXPECT_EQ(closed_by_server(idle[1], true), 1);
  EXPECT_EQ(closed_by_server(busy, false), 0);
  EXPECT_EQ(server_->status.connections().evicted, 2u);
  // The request goes on: its end is read and answered.
  ::send(busy, mid.rest.data(), mid.rest.size(), MSG_NOSIGNAL);
  char buf[512];
  ssize_t n = ::read(busy, buf, sizeof buf);
  ASSERT_GT(n, 12);
  EXPECT_EQ(std::string(buf, 12), "HTTP/1.1 200");
  ::close(busy);
  for (int fd : idle) ::close(fd);
}

TEST_F(HttpServerTest, MetricsIsServedByTheReadThreadWhoseQueueIsBounded) {
  stop();
  server_.reset();  // before the routes it serves are replaced
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  auto text = std::make_shared<const std::string>("statherd_x 1\n");
  ApiRoutesOptions with_scrape;
  with_scrape.prometheus_scrape = [&] {
    return std::function<ScrapeText()>([&] {
      entered.set_value();
      released.wait();  // the read thread is busy until the test says so
      return ScrapeText{text, "statherd_server_y 2\n"};
    });
  };
  make_routes(std::move(with_scrape));
  HttpServerOptions ho = default_options();
  ho.max_queued_reads = 1;
  start(ho);
  HttpReply slow;
  std::thread scraper([&] { slow = request(port_, "GET", "/metrics"); });
  entered.get_future().wait();
  EXPECT_EQ(request(port_, "GET", "/healthz").status, 200);  // the io thread is free
  HttpReply busy = request(port_, "GET", "/metrics");
  EXPECT_EQ(busy.status, 503);
  EXPECT_NE(busy.head.find("Retry-After: 1"), std::string::npos) << busy.head;
  release.set_value();
  scraper.join();
  EXPECT_EQ(slow.status, 200);
  EXPECT_EQ(slow.body, "statherd_x 1\nstatherd_server_y 2\n");
}

}  // namespace
}  // namespace statherd::server
