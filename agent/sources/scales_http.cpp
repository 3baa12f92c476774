// ScalesHttpSource: GET each configured Scales endpoint, walk its tree (scales_tree.cpp).
#include "agent/sources/scales_http.h"

namespace statherd::agent {

Result<HttpUrl> scales_request_url(std::string_view configured_url) {
  auto url = parse_http_url(configured_url);
  if (!url) return url;
  if (!url->has_path) url->target = "/status/" + (url->target == "/" ? "" : url->target.substr(1));
  const size_t q = url->target.find('?');
  if (q == std::string::npos) {
    url->target += "?format=json";
  } else {
    const std::string query = "&" + url->target.substr(q + 1);
    if (query.find("&format=") == std::string::npos) url->target += "&format=json";
  }
  return url;
}

ScalesHttpSource::ScalesHttpSource(ScalesHttpOptions options)
    : options_(std::move(options)),
      counters_(options_.counter_patterns),
      endpoints_(make_http_endpoints(options_.urls, scales_request_url)) {}

std::string ScalesHttpSource::describe() const {
  return describe_http_endpoints("scales_http", endpoints_);
}

void ScalesHttpSource::scrape(int64_t now_ms, ScrapeReport& out) {
  HttpGetOptions get;
  get.timeout = options_.timeout;
  get.max_body_bytes = options_.max_bytes;
  get.accept = "application/json";
  auto to_samples = [this, now_ms](const std::string& body) {
    return scales_tree_samples(body, counters_, now_ms);
  };
  scrape_http_endpoints(endpoints_, get, options_.host, to_samples, out);
}

}  // namespace statherd::agent
