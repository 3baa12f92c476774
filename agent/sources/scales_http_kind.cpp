// scales in the source registry (agent/source_registry.h): YAML `scales:`, on when URLs are
// configured.
#include "agent/source_registry.h"
#include "agent/sources/scales_http.h"

namespace statherd::agent {
namespace {

void read_yaml(YamlReader& r, const YAML::Node& section, AgentConfig& c) {
  read_http_source_section(r, section, "scales", c.scales_urls, c.scales_timeout,
                           c.scales_max_bytes, &c.scales_counter_patterns);
}

bool configured(const AgentConfig& c) { return !c.scales_urls.empty(); }

std::string fingerprint(const AgentConfig& c) {
  return fingerprint_of({c.host, fingerprint_join(c.scales_urls),
                         fingerprint_join(c.scales_counter_patterns),
                         std::to_string(c.scales_timeout.count()),
                         std::to_string(c.scales_max_bytes)});
}

std::unique_ptr<Source> build(const AgentConfig& c, int64_t, bool) {
  return std::make_unique<ScalesHttpSource>(
      ScalesHttpOptions{c.scales_urls, c.scales_counter_patterns, c.scales_timeout,
                        static_cast<size_t>(c.scales_max_bytes), c.host});
}

}  // namespace

extern const SourceKind kScalesKind{"scales", "scales", read_yaml, configured, fingerprint, build};

}  // namespace statherd::agent
