#include "agent/spool_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace statherd::agent {
namespace {

constexpr const char* kOwnDirHint =
    "point --spool-dir (spool_dir) at a directory of the agent's own, e.g. "
    "/var/lib/statherd-agent/spool: it is created with mode 0700";

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// The rules for an existing path (lstat'ed into st).
Status check_existing(const std::string& dir, const std::string& what, const struct stat& st) {
  if (S_ISLNK(st.st_mode))
    return make_error(what + " " + dir +
                          " is a symlink: whoever can change it decides where "
                          "the agent writes and what it deletes",
                      std::string(kOwnDirHint) + " (give the real path, not a link)");
  if (!S_ISDIR(st.st_mode))
    return make_error(what + " " + dir + " is not a directory", kOwnDirHint);
  if ((st.st_mode & S_IWOTH) != 0)
    return make_error(what + " " + dir + " is world-writable (mode " + octal_mode(st.st_mode) +
                          "): any local user could delete or forge spooled batches; the agent "
                          "never changes the mode of a shared directory such as /tmp",
                      kOwnDirHint);
  if (st.st_uid != ::geteuid())
    return make_error(what + " " + dir + " is owned by uid " + std::to_string(st.st_uid) +
                          ", not by the agent's uid " + std::to_string(::geteuid()),
                      std::string(kOwnDirHint) + ", or chown it to the agent's user");
  return Ok{};
}

Error cannot_create(const std::string& dir, const std::string& what, int err) {
  return make_error("cannot create " + what + " " + dir + ": " + std::strerror(err),
                    "check that its parent directory exists and the agent's user may write "
                    "there, or " +
                        std::string(kOwnDirHint));
}

}  // namespace

Status check_spool_dir(const std::string& dir, const std::string& what) {
  if (dir.empty()) return Ok{};  // reported as "spool_dir: empty" by the config check
  struct stat st {};
  if (::lstat(dir.c_str(), &st) == 0) return check_existing(dir, what, st);
  if (errno != ENOENT)
    return make_error(what + " " + dir + ": " + std::strerror(errno), kOwnDirHint);
  if (::mkdir(dir.c_str(), 0700) != 0) return cannot_create(dir, what, errno);
  ::rmdir(dir.c_str());  // a probe only: the agent creates it when it starts
  return Ok{};
}

Status prepare_spool_dir(const std::string& dir, const std::string& what) {
  if (::mkdir(dir.c_str(), 0700) == 0) return Ok{};
  if (errno != EEXIST) return cannot_create(dir, what, errno);
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0)
    return make_error(what + " " + dir + ": " + std::strerror(errno), kOwnDirHint);
  return check_existing(dir, what, st);
}

void unlink_own_temp_file(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  if (S_ISREG(st.st_mode) && st.st_uid == ::geteuid()) ::unlink(path.c_str());
}

}  // namespace statherd::agent
