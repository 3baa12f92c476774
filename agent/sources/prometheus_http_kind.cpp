// prometheus (text endpoints) in the source registry (agent/source_registry.h): YAML
// `prometheus:`, on when URLs are configured.
#include "agent/source_registry.h"
#include "agent/sources/prometheus_http.h"

namespace statherd::agent {
namespace {

void read_yaml(YamlReader& r, const YAML::Node& section, AgentConfig& c) {
  read_http_source_section(r, section, "prometheus", c.prometheus_urls, c.prometheus_timeout,
                           c.prometheus_max_bytes, nullptr);
}

bool configured(const AgentConfig& c) { return !c.prometheus_urls.empty(); }

std::string fingerprint(const AgentConfig& c) {
  return fingerprint_of({c.host, fingerprint_join(c.prometheus_urls),
                         std::to_string(c.prometheus_timeout.count()),
                         std::to_string(c.prometheus_max_bytes)});
}

std::unique_ptr<Source> build(const AgentConfig& c, int64_t, bool) {
  return std::make_unique<PrometheusHttpSource>(PrometheusHttpOptions{
      c.prometheus_urls, c.prometheus_timeout, static_cast<size_t>(c.prometheus_max_bytes),
      c.host});
}

}  // namespace

extern const SourceKind kPrometheusKind{"prometheus", "prometheus", read_yaml, configured,
                                        fingerprint, build};

}  // namespace statherd::agent
