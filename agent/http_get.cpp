#include "agent/http_get.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <charconv>
#include <memory>
#include <optional>

namespace statherd::agent {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace asio = boost::asio;

namespace {

Status parse_authority(std::string_view authority, const std::string& shown, HttpUrl& out) {
  if (authority.find('@') != std::string_view::npos)
    return make_error("URL " + shown + " carries user info, which the agent does not send",
                      "drop the user:password@ part; the agent sends no credentials to sources");
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return make_error("URL " + shown + ": unclosed [");
    out.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      port_text = authority.substr(close + 2);
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty())
    return make_error("URL " + shown + " has no host", "e.g. http://127.0.0.1:8080/status/");
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 || port > 65535)
      return make_error("URL " + shown + " has a bad port", "a port is 1..65535");
    out.port = static_cast<uint16_t>(port);
  }
  return Ok{};
}

}  // namespace

Result<HttpUrl> parse_http_url(std::string_view url) {
  const std::string shown(url);
  if (url.rfind("https://", 0) == 0)
    return make_error("URL " + shown + " uses https, which the agent does not support",
                      "use http:// (the agent reads endpoints on the same host or network)");
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0)
    return make_error("URL " + shown + " does not start with http://",
                      "write it as http://host:port[/path], e.g. http://127.0.0.1:8080/status/");
  for (char ch : url)
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f)
      return make_error("URL " + shown + " contains a space or control character",
                        "percent-encode it (%20)");
  std::string_view rest = url.substr(kScheme.size());
  size_t fragment = rest.find('#');
  rest = rest.substr(0, fragment);
  size_t path_start = rest.find_first_of("/?");
  HttpUrl out;
  if (auto st = parse_authority(rest.substr(0, path_start), shown, out); !st) return st.error();
  if (path_start != std::string_view::npos) {
    std::string_view target = rest.substr(path_start);
    out.has_path = target.front() == '/';
    out.target = out.has_path ? std::string(target) : "/" + std::string(target);
  }
  return out;
}

SourceError endpoint_error(const std::string& url_text, const Error& error) {
  std::string text = error.to_string();
  const std::string prefix = "GET " + url_text + ": ";
  if (text.rfind(prefix, 0) == 0) text.erase(0, prefix.size());
  return {url_text, std::move(text)};
}

EndpointSpec split_endpoint_spec(std::string_view spec) {
  const size_t scheme = spec.find("://");
  const size_t eq = spec.find('=');
  if (eq == std::string_view::npos || scheme == std::string_view::npos || eq > scheme)
    return {"", std::string(spec)};
  return {std::string(spec.substr(0, eq)), std::string(spec.substr(eq + 1))};
}

std::string media_type_of(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  std::string out(media);
  for (char& ch : out)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  return out;
}

namespace {

std::string millis_text(std::chrono::milliseconds t) { return std::to_string(t.count()) + " ms"; }

Error transport_error(const std::string& url, const std::string& step, const beast::error_code& ec,
                      const HttpGetOptions& o) {
  if (ec == beast::error::timeout)
    return make_error("GET " + url + ": no complete answer within " + millis_text(o.timeout) +
                          " (timed out while trying to " + step + ")",
                      "the endpoint is slow or hung; raise the source's timeout if it is "
                      "legitimately slow");
  if (ec == http::error::body_limit)
    return make_error("GET " + url + ": the answer is larger than the limit of " +
                          std::to_string(o.max_body_bytes) + " bytes",
                      "raise the source's max_bytes, or point the URL at a smaller subtree");
  if (ec == http::error::header_limit)
    return make_error("GET " + url + ": the answer's headers exceed 16 KiB",
                      "check that the URL points at a stats endpoint");
  if (ec == asio::error::connection_refused)
    return make_error("GET " + url + ": connection refused",
                      "is the process running and listening on that port?");
  return make_error("GET " + url + ": " + step + " failed: " + ec.message(),
                    "check the URL and that the endpoint speaks HTTP/1.1");
}

// One GET, driven by async operations on a private io_context so that the tcp_stream deadline
// (it only applies to async operations) covers connect, write and read (as in shipper.cpp).
struct GetExchange {
  explicit GetExchange(asio::io_context& ioc) : resolver(ioc), stream(ioc) {}
  asio::ip::tcp::resolver resolver;
  beast::tcp_stream stream;
  beast::flat_buffer buffer{8192};
  http::request<http::empty_body> request;
  http::response_parser<http::string_body> parser;
  std::chrono::steady_clock::time_point deadline;
  const HttpGetOptions* options = nullptr;
  std::string url_text;
  std::optional<Error> error;
  bool done = false;

  void fail(const std::string& step, const beast::error_code& ec) {
    if (!error && !done) error = transport_error(url_text, step, ec, *options);
  }
  void start(const HttpUrl& url) {
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
        http::async_read_header(stream, buffer, parser, [this](beast::error_code ec3, size_t) {
          if (ec3) return fail("read the answer's headers", ec3);
          on_header();
        });
      });
    });
  }
  // Beast 1.74 does not always apply body_limit to a Content-Length it has already parsed
  // (seen when headers and body arrive in one segment), so the length is checked here too.
  void on_header() {
    const auto length = parser.content_length();
    if (length && *length > options->max_body_bytes)
      return fail("read the answer", beast::error_code(http::error::body_limit));
    http::async_read(stream, buffer, parser, [this](beast::error_code ec, size_t) {
      if (ec) return fail("read the answer", ec);
      beast::error_code ignored;
      stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      done = true;
    });
  }
};

bool media_type_accepted(const std::string& media, const std::vector<std::string>& accepted) {
  if (accepted.empty() || media.empty()) return true;
  for (const auto& prefix : accepted)
    if (media.rfind(prefix, 0) == 0) return true;
  return false;
}

Result<HttpGetResponse> check_response(const std::string& url_text,
                                       http::response<http::string_body>&& res,
                                       const HttpGetOptions& o) {
  HttpGetResponse out;
  out.status = static_cast<int>(res.result_int());
  out.content_type = std::string(res[http::field::content_type]);
  if (out.status != 200) {
    std::string reason(res.reason());
    return make_error("GET " + url_text + ": HTTP " + std::to_string(out.status) +
                          (reason.empty() ? "" : " " + reason),
                      out.status == 404 ? "check the URL's path" : "check the endpoint's logs");
  }
  const std::string media = media_type_of(out.content_type);
  if (!media_type_accepted(media, o.media_types)) {
    std::string expected;
    for (const auto& m : o.media_types) expected += (expected.empty() ? "" : " or ") + m;
    return make_error("GET " + url_text + ": the answer is " + media + ", not " + expected,
                      "check that the URL points at the right kind of endpoint");
  }
  out.body = std::move(res.body());
  return out;
}

}  // namespace

namespace {

void prepare(GetExchange& ex, const HttpUrl& url, const HttpGetOptions& options,
             std::chrono::steady_clock::time_point deadline) {
  ex.options = &options;
  ex.url_text = url.to_string();
  ex.deadline = deadline;
  ex.request = {http::verb::get, url.target, 11};
  ex.request.set(http::field::host, url.host_port());
  ex.request.set(http::field::user_agent, "statherd-agent");
  ex.request.set(http::field::accept, options.accept.empty() ? "*/*" : options.accept);
  ex.request.set(http::field::connection, "close");
  ex.parser.body_limit(options.max_body_bytes);
  ex.parser.header_limit(16 * 1024);
}

Result<HttpGetResponse> outcome(GetExchange& ex) {
  if (ex.error) return std::move(*ex.error);
  if (!ex.done)
    return transport_error(ex.url_text, "resolve the host",
                           beast::error_code(beast::error::timeout), *ex.options);
  if (ex.parser.get().body().size() > ex.options->max_body_bytes)  // belt and braces, as above
    return transport_error(ex.url_text, "read the answer",
                           beast::error_code(http::error::body_limit), *ex.options);
  return check_response(ex.url_text, ex.parser.release(), *ex.options);
}

}  // namespace

std::vector<Result<HttpGetResponse>> http_get_all(const std::vector<HttpUrl>& urls,
                                                  const HttpGetOptions& options) {
  std::vector<Result<HttpGetResponse>> results;
  results.reserve(urls.size());
  try {
    asio::io_context ioc;
    std::vector<std::unique_ptr<GetExchange>> exchanges;
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    for (const auto& url : urls) {
      exchanges.push_back(std::make_unique<GetExchange>(ioc));
      prepare(*exchanges.back(), url, options, deadline);
      exchanges.back()->start(url);
    }
    // Name resolution is not covered by the stream deadline: stop the whole loop at the
    // deadline (plus a little, so the stream's own timeout reports first when it applies).
    ioc.run_for(options.timeout + std::chrono::milliseconds(200));
    for (auto& ex : exchanges) results.push_back(outcome(*ex));
  } catch (const std::exception& e) {
    results.clear();
    for (const auto& url : urls)
      results.emplace_back(Error{"GET " + url.to_string() + ": HTTP client error: " + e.what(), ""});
  }
  return results;
}

Result<HttpGetResponse> http_get(const HttpUrl& url, const HttpGetOptions& options) {
  return std::move(http_get_all({url}, options).front());
}

}  // namespace statherd::agent
