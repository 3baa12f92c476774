// The shared HTTP client against scripted loopback servers: a normal answer, an announced body
// over the limit, a server that never answers, and a refused port.
#include "common/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <thread>

namespace statherd {
namespace {

using namespace std::chrono_literals;

int listening_socket(uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

// Accepts one connection, reads the request (head + Content-Length body), writes `answer` in
// one piece (empty: writes nothing), then holds the connection open until the client closes it.
class OneShotServer {
 public:
  explicit OneShotServer(std::string answer) : answer_(std::move(answer)) {
    fd_ = listening_socket(port_);
    thread_ = std::thread([this] { serve(); });
  }
  ~OneShotServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  HttpTarget target(std::string path = "/x") const { return {"127.0.0.1", port_, path}; }
  std::string request() {
    std::lock_guard<std::mutex> lock(mu_);
    return request_;
  }

 private:
  void serve() {
    int conn = ::accept(fd_, nullptr, nullptr);
    if (conn < 0) return;
    std::string got = read_request(conn);
    {
      std::lock_guard<std::mutex> lock(mu_);
      request_ = got;
    }
    if (!answer_.empty()) (void)!::write(conn, answer_.data(), answer_.size());
    char buf[256];
    while (::read(conn, buf, sizeof buf) > 0) {
    }  // until the client closes: an answer cut short would otherwise look complete
    ::close(conn);
  }
  static std::string read_request(int conn) {
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
        need = end + 4 + (cl < end ? std::stoul(data.substr(cl + 16)) : 0);
      }
    }
    return data;
  }

  std::string answer_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::string request_;
};

HttpRequest post(const HttpTarget& target, std::string body, size_t max_body = 1024) {
  HttpRequest req;
  req.target = target;
  req.method = HttpMethod::Post;
  req.body = std::move(body);
  req.headers = {{"X-Test", "yes"}};
  req.max_response_body = max_body;
  return req;
}

TEST(HttpClient, PostsAndReadsA200WithBody) {
  OneShotServer server(
      "HTTP/1.1 200 Fine\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello");
  HttpExchangeResult r = http_exchange(post(server.target("/in?q=1"), "payload"), 10s);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.reason, "Fine");
  EXPECT_EQ(r.content_type, "text/plain");
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(r.error, "");
  const std::string got = server.request();
  EXPECT_EQ(got.rfind("POST /in?q=1 HTTP/1.1\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("\r\nX-Test: yes\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("\r\nConnection: close\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("\r\nContent-Length: 7\r\n"), std::string::npos) << got;
  EXPECT_EQ(got.substr(got.size() - 7), "payload");
}

TEST(HttpClient, GetSendsNoBody) {
  OneShotServer server("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  HttpRequest req;
  req.target = server.target();
  HttpExchangeResult r = http_exchange(std::move(req), 10s);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 404);  // any status is an answer; judging it is the caller's business
  EXPECT_EQ(server.request().rfind("GET /x HTTP/1.1\r\n", 0), 0u);
  EXPECT_EQ(server.request().find("Content-Length"), std::string::npos);
}

// Headers and the start of the body arrive in one segment, the case where Beast 1.74 may not
// apply body_limit. The server then holds the connection: had the client gone on reading the
// announced body it would have ended in a timeout, not in a body-limit error.
TEST(HttpClient, AnnouncedBodyOverTheLimitFailsWithoutReadingIt) {
  OneShotServer server("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nstart-of-body");
  HttpExchangeResult r = http_exchange(post(server.target(), "x", 1000), 60s);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.failure, HttpFailure::BodyTooLarge) << r.error;
  EXPECT_EQ(r.step, HttpStep::ReadBody);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.error, "answer body over 1000 bytes");
}

TEST(HttpClient, UnannouncedBodyOverTheLimitFailsToo) {
  // No Content-Length: the body runs to the end of the connection.
  OneShotServer server("HTTP/1.1 200 OK\r\n\r\n" + std::string(5000, 'a'));
  HttpExchangeResult r = http_exchange(post(server.target(), "x", 1000), 60s);
  EXPECT_EQ(r.failure, HttpFailure::BodyTooLarge) << r.error;
  EXPECT_EQ(r.body, "");
}

TEST(HttpClient, SilentServerEndsInATimeoutNamingTheStep) {
  OneShotServer server("");
  HttpExchangeResult r = http_exchange(post(server.target(), "x"), 200ms);
  EXPECT_EQ(r.failure, HttpFailure::Timeout) << r.error;
  EXPECT_EQ(r.step, HttpStep::ReadHeader);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.error, "timed out while trying to read the answer's headers");
}

TEST(HttpClient, RefusedPortIsAConnectError) {
  uint16_t port = 0;
  ::close(listening_socket(port));  // a port nobody listens on any more
  HttpExchangeResult r = http_exchange(post({"127.0.0.1", port, "/"}, "x"), 10s);
  EXPECT_EQ(r.failure, HttpFailure::Refused) << r.error;
  EXPECT_EQ(r.step, HttpStep::Connect);
  EXPECT_EQ(r.error.rfind("connect failed: ", 0), 0u) << r.error;
}

TEST(HttpClient, ExchangesRunTogetherAndKeepTheirOrder) {
  OneShotServer slow("");
  OneShotServer fine("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  std::vector<HttpRequest> reqs;
  reqs.push_back(post(slow.target(), "a"));
  reqs.push_back(post(fine.target(), "b"));
  auto results = http_exchange_all(std::move(reqs), 300ms);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].failure, HttpFailure::Timeout);
  ASSERT_TRUE(results[1].ok()) << results[1].error;
  EXPECT_EQ(results[1].body, "ok");
}

}  // namespace
}  // namespace statherd
