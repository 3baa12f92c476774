#include "common/private_dir.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace statherd {

Status check_not_world_writable(const std::string& path, const std::string& what) {
  if (path.empty()) return Ok{};
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Ok{};  // created with mode 0700 when the daemon starts
    return make_error(what + " " + path + ": " + std::strerror(errno),
                      "point " + what + " at a directory the daemon's user owns");
  }
  if (!S_ISDIR(st.st_mode))
    return make_error(what + " " + path + " is not a directory",
                      "point " + what + " at a directory the daemon's user owns");
  if ((st.st_mode & S_IWOTH) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(what + " " + path + " is world-writable (mode " + mode +
                          "): any local user could delete or forge the data kept there",
                      "run: chmod 0700 " + path + " (or point " + what +
                          " at a directory only the daemon's user can write)");
  }
  return Ok{};
}

}  // namespace statherd
