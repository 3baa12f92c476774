#include "server/state_dir_check.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/private_dir.h"

namespace statherd::server {
namespace {

const char* kHint = "point state_dir at a directory the server's user owns (it is created with "
                    "mode 0700 if missing), e.g. /var/lib/statherd";

std::string parent_of(const std::string& path) {
  size_t end = path.find_last_not_of('/');
  if (end == std::string::npos) return "/";
  size_t slash = path.rfind('/', end);
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// The nearest existing ancestor of a missing state_dir: start creates the rest in it.
Status check_creatable(const std::string& path) {
  std::string dir = path;
  struct stat st {};
  do {
    dir = parent_of(dir);
  } while (::stat(dir.c_str(), &st) != 0 && errno == ENOENT && dir != "/" && dir != ".");
  const std::string what = "state_dir " + path + " does not exist and cannot be created: ";
  if (::stat(dir.c_str(), &st) != 0)
    return make_error(what + dir + ": " + std::strerror(errno), kHint);
  if (!S_ISDIR(st.st_mode)) return make_error(what + dir + " is not a directory", kHint);
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) == 0 &&
      (fs.f_type == PROC_SUPER_MAGIC || fs.f_type == SYSFS_MAGIC))
    return make_error(what + dir + " is on a /proc or /sys filesystem", kHint);
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY) != 0)
    return make_error(what + dir + " is on a read-only filesystem", kHint);
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    return make_error(what + dir + " is not writable: " + std::strerror(errno), kHint);
  return Ok{};
}

}  // namespace

Status check_state_dir(const std::string& path, uid_t /*uid*/) {
  if (path.empty()) return Ok{};
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return check_creatable(path);
    return make_error("state_dir " + path + ": " + std::strerror(errno), kHint);
  }
  return check_not_world_writable(path, "state_dir");
}

}  // namespace statherd::server
