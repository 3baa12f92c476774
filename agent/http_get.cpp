#include "agent/http_get.h"

#include "common/http_client.h"

namespace statherd::agent {

namespace {

Status parse_authority(std::string_view authority, const std::string& shown, HttpUrl& out) {
  if (authority.find('@') != std::string_view::npos)
    return make_error("URL " + shown + " carries user info, which the agent does not send",
                      "drop the user:password@ part; the agent sends no credentials to sources");
  return parse_http_authority(authority, "URL " + shown, "http://127.0.0.1:8080/status/",
                              out.host, out.port);
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

Error transport_error(const std::string& url, const HttpExchangeResult& r,
                      const HttpGetOptions& o) {
  switch (r.failure) {
    case HttpFailure::Timeout:
      return make_error("GET " + url + ": no complete answer within " + millis_text(o.timeout) +
                            " (timed out while trying to " + http_step_name(r.step) + ")",
                        "the endpoint is slow or hung; raise the source's timeout if it is "
                        "legitimately slow");
    case HttpFailure::BodyTooLarge:
      return make_error("GET " + url + ": the answer is larger than the limit of " +
                            std::to_string(o.max_body_bytes) + " bytes",
                        "raise the source's max_bytes, or point the URL at a smaller subtree");
    case HttpFailure::HeaderTooLarge:
      return make_error("GET " + url + ": the answer's headers exceed 16 KiB",
                        "check that the URL points at a stats endpoint");
    case HttpFailure::Refused:
      return make_error("GET " + url + ": connection refused",
                        "is the process running and listening on that port?");
    default:
      return make_error("GET " + url + ": " + r.error,
                        "check the URL and that the endpoint speaks HTTP/1.1");
  }
}

bool media_type_accepted(const std::string& media, const std::vector<std::string>& accepted) {
  if (accepted.empty() || media.empty()) return true;
  for (const auto& prefix : accepted)
    if (media.rfind(prefix, 0) == 0) return true;
  return false;
}

Result<HttpGetResponse> check_response(const std::string& url_text, HttpExchangeResult&& r,
                                       const HttpGetOptions& o) {
  if (!r.ok()) return transport_error(url_text, r, o);
  HttpGetResponse out;
  out.status = r.status;
  out.content_type = std::move(r.content_type);
  if (out.status != 200)
    return make_error("GET " + url_text + ": HTTP " + std::to_string(out.status) +
                          (r.reason.empty() ? "" : " " + r.reason),
                      out.status == 404 ? "check the URL's path" : "check the endpoint's logs");
  const std::string media = media_type_of(out.content_type);
  if (!media_type_accepted(media, o.media_types)) {
    std::string expected;
    for (const auto& m : o.media_types) expected += (expected.empty() ? "" : " or ") + m;
    return make_error("GET " + url_text + ": the answer is " + media + ", not " + expected,
                      "check that the URL points at the right kind of endpoint");
  }
  out.body = std::move(r.body);
  return out;
}

HttpRequest get_request(const HttpUrl& url, const HttpGetOptions& options) {
  HttpRequest req;
  req.target = {url.host, url.port, url.target};
  req.method = HttpMethod::Get;
  req.headers = {{"User-Agent", "statherd-agent"},
                 {"Accept", options.accept.empty() ? "*/*" : options.accept}};
  req.max_response_body = options.max_body_bytes;
  return req;
}

}  // namespace

std::vector<Result<HttpGetResponse>> http_get_all(const std::vector<HttpUrl>& urls,
                                                  const HttpGetOptions& options) {
  std::vector<HttpRequest> requests;
  requests.reserve(urls.size());
  for (const auto& url : urls) requests.push_back(get_request(url, options));
  auto answers = http_exchange_all(std::move(requests), options.timeout);
  std::vector<Result<HttpGetResponse>> results;
  results.reserve(urls.size());
  for (size_t i = 0; i < urls.size(); ++i)
    results.push_back(check_response(urls[i].to_string(), std::move(answers[i]), options));
  return results;
}

Result<HttpGetResponse> http_get(const HttpUrl& url, const HttpGetOptions& options) {
  return std::move(http_get_all({url}, options).front());
}

}  // namespace statherd::agent
