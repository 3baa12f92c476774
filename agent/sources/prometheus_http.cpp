#include "agent/sources/prometheus_http.h"

#include <span>

#include "agent/sources/prometheus_text.h"

namespace statherd::agent {

PrometheusHttpSource::PrometheusHttpSource(PrometheusHttpOptions options)
    : options_(std::move(options)) {
  for (const auto& configured : options_.urls) {
    EndpointSpec spec = split_endpoint_spec(configured);
    auto url = parse_http_url(spec.url);
    std::string app = spec.app;
    if (app.empty() && url) app = url->host_port();
    endpoints_.push_back(Endpoint{configured, std::move(app), std::move(url)});
  }
}

std::string PrometheusHttpSource::describe() const {
  std::string out = "prometheus_http";
  for (const auto& e : endpoints_) out += " " + e.configured;
  return out;
}

void PrometheusHttpSource::scrape(int64_t now_ms, ScrapeReport& out) {
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
  get.accept = "text/plain;version=0.0.4;q=1,*/*;q=0.1";
  get.media_types = {"text/plain"};
  auto answers = http_get_all(urls, get);
  for (size_t i = 0; i < answers.size(); ++i) {
    const std::string url_text = urls[i].to_string();
    if (!answers[i]) {
      out.errors.push_back(endpoint_error(url_text, answers[i].error()));
      continue;
    }
    const std::string& body = answers[i]->body;
    auto families = parse_prometheus_text(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(body.data()), body.size()));
    auto samples = families ? prometheus_samples(*families, now_ms)
                            : Result<std::vector<Sample>>(families.error());
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
