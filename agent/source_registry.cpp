// Helpers of the source kinds (see source_registry.h); the list itself is in
// agent/sources/all_kinds.cpp.
#include "agent/source_registry.h"

#include "agent/http_get.h"

namespace statherd::agent {

std::string fingerprint_join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += i + '\x1f';
  return out;
}

std::string fingerprint_of(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) out += p + '\x1e';
  return out;
}

void read_http_source_section(YamlReader& r, const YAML::Node& node, const std::string& key,
                              std::vector<std::string>& urls, std::chrono::milliseconds& timeout,
                              uint64_t& max_bytes, std::vector<std::string>* counter_patterns) {
  std::set<std::string> known{"urls", "timeout", "max_bytes"};
  if (counter_patterns) known.insert("counter_patterns");
  r.check_keys(node, known, key);
  r.get_duration(node, "timeout", timeout, key);
  r.get_bytes(node, "max_bytes", max_bytes, key);
  if (counter_patterns) r.get_string_list(node, "counter_patterns", *counter_patterns, key);
  if (!r.get_string_list(node, "urls", urls, key)) return;
  for (size_t i = 0; i < urls.size(); ++i) {
    if (auto url = parse_http_url(split_endpoint_spec(urls[i]).url); !url)
      r.error_at(node["urls"][i], key + ".urls", url.error().message,
                 "http://host:port[/path], optionally prefixed by APP=");
  }
}

}  // namespace statherd::agent
