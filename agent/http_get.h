// A small HTTP/1.1 GET client for the agent's HTTP sources (Scales /status, Prometheus /metrics).
// One connection per request ("Connection: close"), plain http:// only. Every request has one
// deadline covering resolve + connect + send + read, and a limit on the response body; each
// failure is an Error that says what happened (timeout, refused, status, too big, wrong type)
// and what to do. The exchange itself is the shared client in common/http_client.h.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/sample.h"

namespace statherd::agent {

inline constexpr size_t kDefaultHttpMaxBodyBytes = size_t{8} << 20;  // 8 MiB

// http://host[:port][/path][?query]. The target is path + query ("/" when absent).
struct HttpUrl {
  std::string host;
  uint16_t port = 80;
  std::string target = "/";
  bool has_path = false;  // the URL spelled a path (even just "/")
  std::string host_port() const { return host + ":" + std::to_string(port); }
  std::string to_string() const { return "http://" + host_port() + target; }
};
// https:// is refused with a hint (the agent speaks no TLS); a URL with user info is refused.
Result<HttpUrl> parse_http_url(std::string_view url);

struct HttpGetOptions {
  std::chrono::milliseconds timeout{5'000};      // the whole request
  size_t max_body_bytes = kDefaultHttpMaxBodyBytes;
  std::string accept;                            // Accept header; empty: "*/*"
  // Accepted media types of the answer, matched as prefixes of the lower-cased media type
  // ("text/" accepts text/plain and text/html). Empty: any. A missing Content-Type is accepted.
  std::vector<std::string> media_types;
};

struct HttpGetResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

// GET url. Anything but a 200 with an accepted media type and a body within the limit is an
// Error naming the URL.
Result<HttpGetResponse> http_get(const HttpUrl& url, const HttpGetOptions& options);
// All of them at once on one event loop, under one deadline; results in the order of `urls`.
// A slow endpoint costs the others nothing.
std::vector<Result<HttpGetResponse>> http_get_all(const std::vector<HttpUrl>& urls,
                                                  const HttpGetOptions& options);

// A failed GET as a source's error: source = url_text, message without the "GET url: " prefix.
SourceError endpoint_error(const std::string& url_text, const Error& error);

// An endpoint as configured: "URL" or "APP=URL" (the app name reported for its samples; without
// it the app is the URL's host:port).
struct EndpointSpec {
  std::string app;  // empty: not given
  std::string url;
};
EndpointSpec split_endpoint_spec(std::string_view spec);

// "text/plain; version=0.0.4" -> "text/plain".
std::string media_type_of(std::string_view content_type);

}  // namespace statherd::agent
