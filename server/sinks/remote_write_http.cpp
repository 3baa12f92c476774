#include "server/sinks/remote_write_http.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <charconv>
#include <exception>

namespace statherd::server {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace asio = boost::asio;

Result<RwUrl> parse_remote_write_url(std::string_view url) {
  const std::string shown(url);
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0)
    return make_error("remote_write URL " + shown + " does not start with http://",
                      "e.g. http://127.0.0.1:9090/api/v1/write (https is not supported: put a "
                      "TLS proxy on loopback)");
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  RwUrl out;
  if (slash != std::string_view::npos) out.target = std::string(rest.substr(slash));
  if (authority.find('@') != std::string_view::npos)
    return make_error("remote_write URL " + shown + " carries user info",
                      "drop the user:password@ part; the server sends no credentials");
  const size_t colon = authority.rfind(':');
  out.host = std::string(authority.substr(0, colon));
  if (colon != std::string_view::npos) {
    std::string_view p = authority.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || end != p.data() + p.size() || port == 0 || port > 65535)
      return make_error("remote_write URL " + shown + " has a bad port", "a port is 1..65535");
    out.port = static_cast<uint16_t>(port);
  }
  if (out.host.empty())
    return make_error("remote_write URL " + shown + " has no host",
                      "e.g. http://127.0.0.1:9090/api/v1/write");
  for (char ch : shown)
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f)
      return make_error("remote_write URL " + shown + " contains a space or control character",
                        "percent-encode it (%20)");
  return out;
}

namespace {

// Async operations on a private io_context, so the tcp_stream deadline covers every step.
struct PostExchange {
  explicit PostExchange(asio::io_context& ioc) : resolver(ioc), stream(ioc) {}
  asio::ip::tcp::resolver resolver;
  beast::tcp_stream stream;
  beast::flat_buffer buffer{8192};
  http::request<http::string_body> request;
  http::response_parser<http::string_body> parser;
  std::chrono::steady_clock::time_point deadline;
  RwPostResult result;
  bool finished = false;

  void fail(const std::string& step, const beast::error_code& ec) {
    if (finished) return;
    finished = true;
    result.status = 0;
    result.error = (ec == beast::error::timeout ? "timed out while trying to " + step
                                                : step + " failed: " + ec.message());
  }
  void start(const RwUrl& url) {
    resolver.async_resolve(url.host, std::to_string(url.port),
                           [this](beast::error_code ec, auto endpoints) {
                             if (ec) return fail("resolve the host", ec);
                             on_resolved(endpoints);
                           });
  }
  void on_resolved(const asio::ip::tcp::resolver::results_type& endpoints) {
    stream.expires_at(deadline);
    stream.async_connect(endpoints, [this](beast::error_code ec, auto) {
      if (ec) return fail("connect", ec);
      http::async_write(stream, request, [this](beast::error_code ec2, size_t) {
        if (ec2) return fail("send the request", ec2);
        http::async_read(stream, buffer, parser, [this](beast::error_code ec3, size_t) {
          if (ec3) return fail("read the answer", ec3);
          on_answer();
        });
      });
    });
  }
  void on_answer() {
    finished = true;
    result.status = static_cast<int>(parser.get().result_int());
    if (result.status < 200 || result.status >= 300)
      result.error = parser.get().body().substr(0, 512);
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  }
};

}  // namespace

RwPostResult http_post(const RwUrl& url, const std::string& body,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       std::chrono::milliseconds timeout) {
  try {
    asio::io_context ioc;
    PostExchange ex(ioc);
    ex.deadline = std::chrono::steady_clock::now() + timeout;
    ex.request = {http::verb::post, url.target, 11};
    ex.request.set(http::field::host, url.host + ":" + std::to_string(url.port));
    ex.request.set(http::field::connection, "close");
    for (const auto& [name, value] : headers) ex.request.set(name, value);
    ex.request.body() = body;
    ex.request.prepare_payload();
    ex.parser.body_limit(64 * 1024);
    ex.parser.header_limit(16 * 1024);
    ex.start(url);
    // Name resolution is not covered by the stream deadline: bound the whole loop as well.
    ioc.run_for(timeout + std::chrono::milliseconds(100));
    if (!ex.finished) ex.fail("resolve the host", beast::error_code(beast::error::timeout));
    return ex.result;
  } catch (const std::exception& e) {
    return {0, std::string("POST failed: ") + e.what()};
  }
}

}  // namespace statherd::server
