// mmstats_v1 in the source registry (agent/source_registry.h): YAML `mmstats:`, always on.
#include "agent/source_registry.h"
#include "agent/sources/mmstats_v1.h"

namespace statherd::agent {
namespace {

void read_yaml(YamlReader& r, const YAML::Node& mm, AgentConfig& c) {
  r.check_keys(mm, {"globs", "counter_patterns"}, "mmstats");
  r.get_string_list(mm, "globs", c.mmstats_globs, "mmstats");
  std::vector<std::string> patterns;
  if (r.get_string_list(mm, "counter_patterns", patterns, "mmstats"))
    c.counter_patterns = std::move(patterns);
}

bool configured(const AgentConfig&) { return true; }  // default glob: $MMSTATS_GLOB, /tmp

std::string fingerprint(const AgentConfig& c) {
  const std::string patterns =
      c.counter_patterns ? "set:" + fingerprint_join(*c.counter_patterns) : "default";
  return fingerprint_of({c.host, fingerprint_join(c.mmstats_globs), patterns,
                         std::to_string(c.max_file_bytes)});
}

std::unique_ptr<Source> build(const AgentConfig& c, int64_t last_scan_ms, bool one_shot) {
  MmstatsV1Options mm;
  mm.globs = c.mmstats_globs;
  if (c.counter_patterns) mm.counter_patterns = *c.counter_patterns;
  mm.host = c.host;
  mm.fresh_if_started_after_ms = last_scan_ms;
  mm.one_shot = one_shot;
  mm.max_file_bytes = c.max_file_bytes;
  if (!one_shot) mm.start_times_file = c.spool_dir + "/mmstats_v1.start_times";
  return std::make_unique<MmstatsV1Source>(std::move(mm));
}

}  // namespace

extern const SourceKind kMmstatsV1Kind{"mmstats_v1", "mmstats", read_yaml, configured,
                                       fingerprint, build};

}  // namespace statherd::agent
