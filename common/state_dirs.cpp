#include "common/state_dirs.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace statherd {
namespace {

// A usable value: set, non-empty and absolute.
std::optional<std::string> absolute(const EnvLookup& env, const std::string& var) {
  std::optional<std::string> v = env(var);
  if (!v || v->empty() || (*v)[0] != '/') return std::nullopt;
  return v;
}

std::string join(std::string dir, std::string_view name) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir + (dir == "/" ? "" : "/") + std::string(name);
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& var) -> std::optional<std::string> {
    const char* v = std::getenv(var.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::string default_state_dir(std::string_view name, const EnvLookup& env, uid_t uid) {
  if (std::optional<std::string> systemd = absolute(env, "STATE_DIRECTORY")) {
    return systemd->substr(0, systemd->find(':'));
  }
  if (uid == 0) return join("/var/lib", name);
  if (std::optional<std::string> xdg = absolute(env, "XDG_STATE_HOME")) return join(*xdg, name);
  if (std::optional<std::string> home = absolute(env, "HOME"))
    return join(join(*home, ".local/state"), name);
  return {};
}

Status create_parent_dirs(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    const std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return make_error("cannot create " + dir + ": " + std::strerror(errno),
                        "create it, or name a directory in the configuration");
  }
  return Ok{};
}

}  // namespace statherd
