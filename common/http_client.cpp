#include "common/http_client.h"

#include <charconv>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <exception>
#include <memory>

namespace statherd {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace asio = boost::asio;

const char* http_step_name(HttpStep step) {
  switch (step) {
    case HttpStep::Resolve:
      return "resolve the host";
    case HttpStep::Connect:
      return "connect";
    case HttpStep::Send:
      return "send the request";
    case HttpStep::ReadHeader:
      return "read the answer's headers";
    case HttpStep::ReadBody:
      return "read the answer";
  }
  return "?";
}

namespace {

constexpr size_t kHeaderLimit = 16 * 1024;

HttpFailure failure_of(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return HttpFailure::Timeout;
  if (ec == asio::error::connection_refused) return HttpFailure::Refused;
  if (ec == http::error::body_limit) return HttpFailure::BodyTooLarge;
  if (ec == http::error::header_limit) return HttpFailure::HeaderTooLarge;
  return HttpFailure::Other;
}

// Fills the failure fields of `out`; the first failure of an exchange wins.
void set_failure(HttpExchangeResult& out, HttpStep step, const beast::error_code& ec,
                 size_t max_body) {
  out.status = 0;
  out.failure = failure_of(ec);
  out.step = step;
  const std::string step_text = http_step_name(step);
  switch (out.failure) {
    case HttpFailure::Timeout:
      out.cause = ec.message();
      out.error = "timed out while trying to " + step_text;
      return;
    case HttpFailure::BodyTooLarge:
      out.cause = "answer body over " + std::to_string(max_body) + " bytes";
      out.error = out.cause;
      return;
    default:
      out.cause = ec.message();
      out.error = step_text + " failed: " + out.cause;
  }
}

http::verb verb_of(HttpMethod m) {
  return m == HttpMethod::Post ? http::verb::post : http::verb::get;
}

// One exchange, driven by async operations so that the tcp_stream deadline (it only applies to
// async operations) covers connect, send and read; resolving is bounded by the loop's run_for.
struct Exchange {
  Exchange(asio::io_context& ioc, HttpRequest&& req, std::chrono::steady_clock::time_point at)
      : resolver(ioc), stream(ioc), spec(std::move(req)), deadline(at) {
    request = {verb_of(spec.method), spec.target.target, 11};
    request.set(http::field::host, spec.target.host + ":" + std::to_string(spec.target.port));
    request.set(http::field::connection, "close");
    for (const auto& [name, value] : spec.headers) request.set(name, value);
    request.body() = std::move(spec.body);
    request.prepare_payload();
    parser.body_limit(spec.max_response_body);
    parser.header_limit(kHeaderLimit);
  }

  asio::ip::tcp::resolver resolver;
  beast::tcp_stream stream;
  beast::flat_buffer buffer{8192};
  HttpRequest spec;
  http::request<http::string_body> request;
  http::response_parser<http::string_body> parser;
  std::chrono::steady_clock::time_point deadline;
  HttpStep step = HttpStep::Resolve;
  bool finished = false;
  HttpExchangeResult result;

  void fail(const beast::error_code& ec) {
    if (finished) return;
    finished = true;
    // Beast may hit body_limit while still parsing the headers' segment; it is a body failure.
    if (ec == http::error::body_limit) step = HttpStep::ReadBody;
    set_failure(result, step, ec, spec.max_response_body);
    beast::error_code ignored;
    stream.socket().close(ignored);  // nothing more is read from a failed exchange
  }
  void start() {
    resolver.async_resolve(spec.target.host, std::to_string(spec.target.port),
                           [this](beast::error_code ec, auto endpoints) {
                             if (ec) return fail(ec);
                             on_resolved(endpoints);
                           });
  }
  void on_resolved(const asio::ip::tcp::resolver::results_type& endpoints) {
    step = HttpStep::Connect;
    stream.expires_at(deadline);  // stays armed for every later operation on the stream
    stream.async_connect(endpoints, [this](beast::error_code ec, auto) {
      if (ec) return fail(ec);
      step = HttpStep::Send;
      http::async_write(stream, request, [this](beast::error_code ec2, size_t) {
        if (ec2) return fail(ec2);
        step = HttpStep::ReadHeader;
        http::async_read_header(stream, buffer, parser, [this](beast::error_code ec3, size_t) {
          if (ec3) return fail(ec3);
          on_header();
        });
      });
    });
  }
  // Beast 1.74 does not always apply body_limit to a Content-Length it has already parsed
  // (seen when headers and body arrive in one segment), so the announced length is checked
  // here, before reading any of the body.
  void on_header() {
    step = HttpStep::ReadBody;
    const auto length = parser.content_length();
    if (length && *length > spec.max_response_body)
      return fail(beast::error_code(http::error::body_limit));
    http::async_read(stream, buffer, parser, [this](beast::error_code ec, size_t) {
      if (ec) return fail(ec);
      on_answer();
    });
  }
  void on_answer() {
    if (parser.get().body().size() > spec.max_response_body)  // belt and braces, as above
      return fail(beast::error_code(http::error::body_limit));
    finished = true;
    auto res = parser.release();
    result.status = static_cast<int>(res.result_int());
    result.reason = std::string(res.reason());
    result.content_type = std::string(res[http::field::content_type]);
    result.body = std::move(res.body());
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  }
  // After the loop stopped: an exchange still running ran out of time in its current step.
  HttpExchangeResult take() {
    if (!finished) fail(beast::error_code(beast::error::timeout));
    return std::move(result);
  }
};

}  // namespace

std::vector<HttpExchangeResult> http_exchange_all(std::vector<HttpRequest> requests,
                                                  std::chrono::milliseconds deadline) {
  std::vector<HttpExchangeResult> results;
  results.reserve(requests.size());
  try {
    asio::io_context ioc;
    std::vector<std::unique_ptr<Exchange>> exchanges;
    const auto at = std::chrono::steady_clock::now() + deadline;
    for (auto& request : requests) {
      exchanges.push_back(std::make_unique<Exchange>(ioc, std::move(request), at));
      exchanges.back()->start();
    }
    // Name resolution is not covered by the stream deadline: stop the whole loop at the
    // deadline (plus a little, so the stream's own timeout reports first when it applies).
    ioc.run_for(deadline + std::chrono::milliseconds(200));
    for (auto& ex : exchanges) results.push_back(ex->take());
  } catch (const std::exception& e) {
    results.assign(requests.size(), HttpExchangeResult{});
    for (auto& r : results) {
      r.failure = HttpFailure::ClientError;
      r.cause = e.what();
      r.error = std::string("HTTP client error: ") + e.what();
    }
  }
  return results;
}

HttpExchangeResult http_exchange(HttpRequest request, std::chrono::milliseconds deadline) {
  std::vector<HttpRequest> one;
  one.push_back(std::move(request));
  return std::move(http_exchange_all(std::move(one), deadline).front());
}

Status parse_http_authority(std::string_view authority, const std::string& what,
                            std::string_view example, std::string& host, uint16_t& port) {
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return make_error(what + ": unclosed [");
    host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      port_text = authority.substr(close + 2);
  } else {
    const size_t colon = authority.rfind(':');
    host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (host.empty()) return make_error(what + " has no host", "e.g. " + std::string(example));
  if (port_text.empty()) return Ok{};
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 ||
      value > 65535)
    return make_error(what + " has a bad port", "a port is 1..65535");
  port = static_cast<uint16_t>(value);
  return Ok{};
}

}  // namespace statherd
