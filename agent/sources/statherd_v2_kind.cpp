// statherd_v2 in the source registry (agent/source_registry.h): YAML `statherd_v2:`, always on.
#include "agent/source_registry.h"
#include "agent/sources/statherd_v2.h"

namespace statherd::agent {
namespace {

void read_yaml(YamlReader& r, const YAML::Node& v2, AgentConfig& c) {
  r.check_keys(v2, {"globs"}, "statherd_v2");
  r.get_string_list(v2, "globs", c.v2_globs, "statherd_v2");
}

bool configured(const AgentConfig&) { return true; }  // default glob: $STATHERD_DIR

std::string fingerprint(const AgentConfig& c) {
  return fingerprint_of({c.host, fingerprint_join(c.v2_globs), std::to_string(c.max_file_bytes)});
}

std::unique_ptr<Source> build(const AgentConfig& c, int64_t last_scan_ms, bool one_shot) {
  StatherdV2Options v2;
  v2.globs = c.v2_globs;
  v2.host = c.host;
  v2.fresh_if_started_after_ms = last_scan_ms;
  v2.one_shot = one_shot;
  v2.max_file_bytes = c.max_file_bytes;
  return std::make_unique<StatherdV2Source>(std::move(v2));
}

}  // namespace

extern const SourceKind kStatherdV2Kind{"statherd_v2", "statherd_v2", read_yaml, configured,
                                        fingerprint, build};

}  // namespace statherd::agent
