#include "agent/sources/prometheus_http.h"

#include <cmath>
#include <span>

#include "agent/sources/prometheus_text.h"

namespace statherd::agent {

void EndpointStarts::apply(SourceSamples& ss) {
  const Sample* start = nullptr;
  for (const Sample& s : ss.samples)
    if (s.name == "process_start_time_seconds" && s.tags.empty()) start = &s;
  // A plausible time: after 2001 and before 2100 (seconds since the epoch).
  if (start == nullptr || !(start->value > 1e9 && start->value < 4.1e9)) return;
  const auto ms = static_cast<int64_t>(std::llround(start->value * 1000.0));
  auto [it, inserted] = last_.try_emplace(ss.id.path, ms);
  if (!inserted && it->second != ms) {
    ss.fresh = true;  // restarted since the previous read: all it counted is new
    it->second = ms;
  }
  ss.id.start_time_ms = ms;
}

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
  const size_t before = out.sources.size();
  scrape_http_endpoints(endpoints_, get, options_.host, to_samples, out);
  for (size_t i = before; i < out.sources.size(); ++i) starts_.apply(out.sources[i]);
}

}  // namespace statherd::agent
