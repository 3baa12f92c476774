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
    : options_(std::move(options)), counters_(options_.counter_patterns) {
  for (const auto& configured : options_.urls) {
    EndpointSpec spec = split_endpoint_spec(configured);
    auto url = scales_request_url(spec.url);
    std::string app = spec.app;
    if (app.empty() && url) app = url->host_port();
    endpoints_.push_back(Endpoint{configured, std::move(app), std::move(url)});
  }
}

std::string ScalesHttpSource::describe() const {
  std::string out = "scales_http";
  for (const auto& e : endpoints_) out += " " + e.configured;
  return out;
}

void ScalesHttpSource::scrape(int64_t now_ms, ScrapeReport& out) {
  std::vector<HttpUrl> urls;
  std::vector<const Endpoint*> fetched;
  for (const auto& e : endpoints_) {
    if (!e.url) {
      out.errors.push_back({e.configured, e.url.error().to_string()});
      continue;
    }
    urls.push_back(*e.url);
    fetched.push_back(&e);
  }
  HttpGetOptions get;
  get.timeout = options_.timeout;
  get.max_body_bytes = options_.max_bytes;
  get.accept = "application/json";
  auto answers = http_get_all(urls, get);
  for (size_t i = 0; i < answers.size(); ++i) {
    const std::string url_text = urls[i].to_string();
    if (!answers[i]) {
      out.errors.push_back(endpoint_error(url_text, answers[i].error()));
      continue;
    }
    auto samples = scales_tree_samples(answers[i]->body, counters_, now_ms);
    if (!samples) {
      out.errors.push_back({url_text, samples.error().to_string()});
      continue;
    }
    SourceSamples ss;
    ss.id.host = options_.host;
    ss.id.app = fetched[i]->app;
    ss.id.pid = -1;
    ss.id.path = url_text;
    ss.samples = std::move(*samples);
    out.sources.push_back(std::move(ss));
  }
}

}  // namespace statherd::agent
