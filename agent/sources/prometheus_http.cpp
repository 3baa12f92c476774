#include "agent/sources/prometheus_http.h"

#include <span>

#include "agent/sources/prometheus_text.h"

namespace statherd::agent {

PrometheusHttpSource::PrometheusHttpSource(PrometheusHttpOptions options)
    : options_(std::move(options)),
      endpoints_(make_http_endpoints(options_.urls, [](std::string_view u) {
        return parse_http_url(u);
      })) {}

std::string PrometheusHttpSource::describe() const {
  return describe_http_endpoints("prometheus_http", endpoints_);
}

void PrometheusHttpSource::scrape(int64_t now_ms, ScrapeReport& out) {
  HttpGetOptions get;
  get.timeout = options_.timeout;
  get.max_body_bytes = options_.max_bytes;
  get.accept = "text/plain;version=0.0.4;q=1,*/*;q=0.1";
  get.media_types = {"text/plain"};
  auto to_samples = [now_ms](const std::string& body) -> Result<std::vector<Sample>> {
    auto families = parse_prometheus_text(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(body.data()), body.size()));
    if (!families) return families.error();
    return prometheus_samples(*families, now_ms);
  };
  scrape_http_endpoints(endpoints_, get, options_.host, to_samples, out);
}

}  // namespace statherd::agent
