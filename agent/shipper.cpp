#include "agent/shipper.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <charconv>
#include <optional>

#include "common/wire.h"

namespace statherd::agent {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace asio = boost::asio;

Result<ServerUrl> parse_server_url(std::string_view url) {
  const std::string shown(url);
  if (url.rfind("https://", 0) == 0)
    return make_error("server URL " + shown + " uses https, which the agent does not support",
                      "use http://host:port (run a TLS-terminating proxy beside the agent if the "
                      "link must be encrypted)");
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0)
    return make_error("server URL " + shown + " does not start with http://",
                      "write it as http://host:port[/path], e.g. http://127.0.0.1:8470");
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  ServerUrl out;
  if (slash != std::string_view::npos) {
    out.path_prefix = std::string(rest.substr(slash));
    while (!out.path_prefix.empty() && out.path_prefix.back() == '/') out.path_prefix.pop_back();
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return make_error("server URL " + shown + ": unclosed [");
    out.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      port_text = authority.substr(close + 2);
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty())
    return make_error("server URL " + shown + " has no host", "e.g. http://127.0.0.1:8470");
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 || port > 65535)
      return make_error("server URL " + shown + " has a bad port", "a port is 1..65535");
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

const char* ship_outcome_name(ShipOutcome o) {
  switch (o) {
    case ShipOutcome::Acked: return "acked";
    case ShipOutcome::RetryLater: return "retry-later";
    case ShipOutcome::Unauthorized: return "unauthorized";
    case ShipOutcome::Rejected: return "rejected";
  }
  return "?";
}

ShipOutcome classify_http_status(int status) {
  if (status == 200) return ShipOutcome::Acked;
  if (status == 401 || status == 403) return ShipOutcome::Unauthorized;
  if (status == 429 || status >= 500 || status < 400) return ShipOutcome::RetryLater;
  return ShipOutcome::Rejected;
}

namespace {

http::request<http::string_body> build_request(const HttpSenderOptions& o, uint64_t seq,
                                               std::string_view body) {
  http::request<http::string_body> req{http::verb::post, o.url.ingest_target(), 11};
  req.set(http::field::host, o.url.host + ":" + std::to_string(o.url.port));
  req.set(http::field::user_agent, "statherd-agent");
  req.set(http::field::authorization, "Bearer " + o.token);
  req.set(http::field::content_type, kBatchContentType);
  req.set("X-Statherd-Agent", o.agent_id);
  req.set("X-Statherd-Seq", std::to_string(seq));
  req.set(http::field::connection, "close");
  req.body().assign(body.data(), body.size());
  req.prepare_payload();
  return req;
}

ShipResult connection_failure(const std::string& what, const beast::error_code& ec) {
  return {ShipOutcome::RetryLater, 0, what + ": " + ec.message()};
}

// One POST, driven by async operations on one io_context so that the tcp_stream deadline
// (expires_after only applies to async operations) covers connect, write and read.
struct Exchange {
  asio::io_context ioc;
  asio::ip::tcp::resolver resolver{ioc};
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer{8192};
  http::request<http::string_body> request;
  http::response_parser<http::string_body> parser;
  std::chrono::milliseconds timeout{};
  std::optional<ShipResult> result;

  void fail(const std::string& what, const beast::error_code& ec) {
    if (!result) result = connection_failure(what, ec);
  }
  void start(const ServerUrl& url) {
    resolver.async_resolve(url.host, std::to_string(url.port),
                           [this, host = url.host](beast::error_code ec, auto endpoints) {
                             if (ec) return fail("resolve " + host, ec);
                             on_resolved(endpoints);
                           });
  }
  void on_resolved(const asio::ip::tcp::resolver::results_type& endpoints) {
    stream.expires_after(timeout);
    stream.async_connect(endpoints, [this](beast::error_code ec, auto) {
      if (ec) return fail("connect", ec);
      stream.expires_after(timeout);
      http::async_write(stream, request, [this](beast::error_code ec2, size_t) {
        if (ec2) return fail("send", ec2);
        stream.expires_after(timeout);
        http::async_read(stream, buffer, parser, [this](beast::error_code ec3, size_t) {
          if (ec3) return fail("read response", ec3);
          on_response();
        });
      });
    });
  }
  void on_response() {
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    const auto& res = parser.get();
    int status = static_cast<int>(res.result_int());
    result = ShipResult{classify_http_status(status), status, res.body().substr(0, 512)};
  }
};

}  // namespace

ShipResult HttpBatchSender::send(uint64_t seq, std::string_view encoded_batch) {
  try {
    Exchange ex;
    ex.timeout = options_.timeout;
    ex.request = build_request(options_, seq, encoded_batch);
    ex.parser.body_limit(options_.max_response_bytes);
    ex.parser.header_limit(16 * 1024);
    ex.start(options_.url);
    // Backstop for name resolution, which the stream deadline does not cover.
    ex.ioc.run_for(options_.timeout * 3 + std::chrono::seconds(1));
    if (!ex.result)
      return {ShipOutcome::RetryLater, 0,
              "no answer from " + options_.url.host + " within the deadline"};
    return std::move(*ex.result);
  } catch (const std::exception& e) {
    return {ShipOutcome::RetryLater, 0, std::string("HTTP client error: ") + e.what()};
  }
}

}  // namespace statherd::agent
