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

}  // namespace

ShipResult HttpBatchSender::send(uint64_t seq, std::string_view encoded_batch) {
  try {
    asio::io_context ioc;
    asio::ip::tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    beast::error_code ec;
    auto endpoints = resolver.resolve(options_.url.host, std::to_string(options_.url.port), ec);
    if (ec) return connection_failure("resolve " + options_.url.host, ec);
    // One deadline for the whole exchange: expires_after covers connect, write and read.
    stream.expires_after(options_.timeout);
    stream.connect(endpoints, ec);
    if (ec) return connection_failure("connect", ec);
    stream.expires_after(options_.timeout);
    auto req = build_request(options_, seq, encoded_batch);
    http::write(stream, req, ec);
    if (ec) return connection_failure("send", ec);
    stream.expires_after(options_.timeout);
    beast::flat_buffer buffer(8192);
    http::response_parser<http::string_body> parser;
    parser.body_limit(options_.max_response_bytes);
    parser.header_limit(16 * 1024);
    http::read(stream, buffer, parser, ec);
    if (ec) return connection_failure("read response", ec);
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    const auto& res = parser.get();
    int status = static_cast<int>(res.result_int());
    std::string detail = res.body().substr(0, 512);
    return {classify_http_status(status), status, std::move(detail)};
  } catch (const std::exception& e) {
    return {ShipOutcome::RetryLater, 0, std::string("HTTP client error: ") + e.what()};
  }
}

}  // namespace statherd::agent
