// prom_multiproc in the source registry (agent/source_registry.h): YAML `prom_multiproc:`, on
// when directories are configured.
#include "agent/source_registry.h"
#include "agent/sources/prom_multiproc.h"

namespace statherd::agent {
namespace {

void read_yaml(YamlReader& r, const YAML::Node& pm, AgentConfig& c) {
  r.check_keys(pm, {"dirs"}, "prom_multiproc");
  r.get_string_list(pm, "dirs", c.prom_multiproc_dirs, "prom_multiproc");
}

bool configured(const AgentConfig& c) { return !c.prom_multiproc_dirs.empty(); }

std::string fingerprint(const AgentConfig& c) {
  return fingerprint_of(
      {c.host, fingerprint_join(c.prom_multiproc_dirs), std::to_string(c.max_file_bytes)});
}

// last_scan_ms is not used: a directory's identity starts at this source's first read (see
// prom_multiproc_source.cpp).
std::unique_ptr<Source> build(const AgentConfig& c, int64_t, bool one_shot) {
  PromMultiprocOptions pm;
  for (const auto& spec : c.prom_multiproc_dirs)
    pm.dirs.push_back(parse_prom_multiproc_dir_spec(spec));
  pm.host = c.host;
  pm.one_shot = one_shot;
  pm.max_file_bytes = c.max_file_bytes;
  return std::make_unique<PromMultiprocSource>(std::move(pm));
}

}  // namespace

extern const SourceKind kPromMultiprocKind{"prom_multiproc", "prom_multiproc", read_yaml,
                                           configured, fingerprint, build};

}  // namespace statherd::agent
