#include "agent/sources/http_endpoints.h"

namespace statherd::agent {

std::vector<HttpEndpoint> make_http_endpoints(
    const std::vector<std::string>& specs,
    const std::function<Result<HttpUrl>(std::string_view)>& make_url) {
  std::vector<HttpEndpoint> out;
  for (const auto& configured : specs) {
    EndpointSpec spec = split_endpoint_spec(configured);
    auto url = make_url(spec.url);
    std::string app = spec.app;
    if (app.empty() && url) app = url->host_port();
    out.push_back(HttpEndpoint{configured, std::move(app), std::move(url)});
  }
  return out;
}

std::string describe_http_endpoints(std::string_view kind, const std::vector<HttpEndpoint>& eps) {
  std::string out(kind);
  for (const auto& e : eps) out += " " + e.configured;
  return out;
}

void scrape_http_endpoints(const std::vector<HttpEndpoint>& endpoints, const HttpGetOptions& get,
                           const std::string& host, const BodyToSamples& to_samples,
                           ScrapeReport& out) {
  std::vector<HttpUrl> urls;
  std::vector<const HttpEndpoint*> fetched;
  for (const auto& e : endpoints) {
    if (!e.url) {
      out.errors.push_back({e.configured, e.url.error().to_string()});
      continue;
    }
    urls.push_back(*e.url);
    fetched.push_back(&e);
  }
  auto answers = http_get_all(urls, get);
  for (size_t i = 0; i < answers.size(); ++i) {
    const std::string url_text = urls[i].to_string();
    if (!answers[i]) {
      out.errors.push_back(endpoint_error(url_text, answers[i].error()));
      continue;
    }
    auto samples = to_samples(answers[i]->body);
    if (!samples) {
      out.errors.push_back({url_text, samples.error().to_string()});
      continue;
    }
    SourceSamples ss;
    ss.id.host = host;
    ss.id.app = fetched[i]->app;
    ss.id.pid = -1;
    ss.id.path = url_text;
    ss.samples = std::move(*samples);
    out.sources.push_back(std::move(ss));
  }
}

}  // namespace statherd::agent
