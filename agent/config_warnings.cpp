#include "agent/config_warnings.h"

#include <glob.h>
#include <sys/stat.h>

#include "agent/sources/prom_multiproc.h"

namespace statherd::agent {
namespace {

bool matches_something(const std::string& pattern) {
  glob_t g{};
  const int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g);
  const bool any = rc == 0 && g.gl_pathc > 0;
  ::globfree(&g);
  return any;
}

// Only globs the operator gave: the defaults are on for every agent, most of which use one
// source kind, and would warn on every host.
void check_globs(const std::vector<std::string>& configured, const char* what,
                 std::vector<std::string>& out) {
  for (const std::string& g : configured) {
    if (matches_something(g)) continue;
    out.push_back(std::string(what) + " glob " + g +
                  " matches no file now\nhint: the agent keeps looking every interval; check "
                  "the path and that the writers use it");
  }
}

}  // namespace

std::vector<std::string> config_warnings(const AgentConfig& config) {
  std::vector<std::string> out;
  check_globs(config.mmstats_globs, "mmstats", out);
  check_globs(config.v2_globs, "statherd v2", out);
  for (const std::string& spec : config.prom_multiproc_dirs) {
    const PromMultiprocDir dir = parse_prom_multiproc_dir_spec(spec);
    struct stat st {};
    if (::stat(dir.path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    out.push_back("prometheus multiprocess directory " + dir.path +
                  " does not exist or is not a directory\nhint: it must be the writers' "
                  "PROMETHEUS_MULTIPROC_DIR; the agent keeps looking every interval");
  }
  return out;
}

}  // namespace statherd::agent
