// What the HTTP endpoint sources (scales_http, prometheus_http) share: configured endpoints and
// one scrape that GETs them all at once and turns each body into one SourceSamples.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/http_get.h"
#include "agent/sources/source.h"

namespace statherd::agent {

struct HttpEndpoint {
  std::string configured;  // as given: "URL" or "APP=URL"
  std::string app;         // the APP= part, else the URL's host:port
  Result<HttpUrl> url;     // a bad URL is reported as that endpoint's error at every scrape
};

// `make_url` turns the configured URL text into the URL to request (e.g. Scales adds a path).
std::vector<HttpEndpoint> make_http_endpoints(
    const std::vector<std::string>& specs,
    const std::function<Result<HttpUrl>(std::string_view)>& make_url);

// "<kind> <configured> <configured> ..." for Source::describe().
std::string describe_http_endpoints(std::string_view kind, const std::vector<HttpEndpoint>& eps);

// GETs every endpoint at once; a body that `to_samples` accepts becomes one SourceSamples
// (host, the endpoint's app, pid -1, path = the URL fetched); every failure (bad URL, GET error,
// body rejected) is a SourceError for that URL only.
using BodyToSamples = std::function<Result<std::vector<Sample>>(const std::string& body)>;
void scrape_http_endpoints(const std::vector<HttpEndpoint>& endpoints, const HttpGetOptions& get,
                           const std::string& host, const BodyToSamples& to_samples,
                           ScrapeReport& out);

}  // namespace statherd::agent
