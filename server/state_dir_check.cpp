#include "server/state_dir_check.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

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

// Another user who can write the parent can rename state_dir away and put their own in its
// place, unless the sticky bit (as on /tmp) keeps them from renaming what they do not own.
Status check_parent(const std::string& path) {
  const std::string parent = parent_of(path);
  struct stat st {};
  if (::stat(parent.c_str(), &st) != 0) return Ok{};
  if ((st.st_mode & S_IWOTH) == 0 || (st.st_mode & S_ISVTX) != 0) return Ok{};
  return make_error("state_dir " + path + ": its parent " + parent +
                        " is world-writable without the sticky bit: any local user could "
                        "replace state_dir",
                    "run: chmod o-w " + parent + " (or chmod +t " + parent +
                        "), or point state_dir elsewhere");
}

}  // namespace

Status check_state_dir(const std::string& path) {
  if (path.empty()) return Ok{};
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return check_creatable(path);
    return make_error("state_dir " + path + ": " + std::strerror(errno), kHint);
  }
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    std::string target = std::filesystem::canonical(path, ec).string();
    return make_error("state_dir " + path + " is a symlink: whoever owns its target or can "
                      "change the link decides where acknowledged data goes",
                      "point state_dir at the directory itself" +
                          (ec ? std::string() : ": " + target));
  }
  if (Status s = check_not_world_writable(path, "state_dir"); !s) return s;
  return check_parent(path);
}

Status check_state_dir_owner(const std::string& path, uid_t uid) {
  struct stat st {};
  if (path.empty() || ::lstat(path.c_str(), &st) != 0) return Ok{};
  if (st.st_uid != uid)
    return make_error("state_dir " + path + " is owned by uid " + std::to_string(st.st_uid) +
                          ", not by the server's uid " + std::to_string(uid) +
                          ": that user could delete or forge the WAL and snapshots",
                      "run: chown " + std::to_string(uid) + " " + path +
                          " (as root), or run the server as the directory's owner");
  return Ok{};
}

}  // namespace statherd::server
