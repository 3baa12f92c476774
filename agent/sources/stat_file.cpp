// See stat_file.h.
#include "agent/sources/stat_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace statherd::agent {
namespace {

const char* file_type_name(mode_t mode) {
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISDIR(mode)) return "a directory";
  return "not a regular file";
}

Error not_regular_error(mode_t mode) {
  if (S_ISLNK(mode))
    return make_error("is a symbolic link: not followed",
                      "the agent reads regular files only and never follows links (anyone who "
                      "can write the directory could point one at a private file); point the "
                      "glob or directory at the real file");
  return make_error(std::string("is ") + file_type_name(mode) + ", not a regular file: not opened",
                    "stat files are regular files; remove it or narrow the glob");
}

Error errno_error(const char* what, int err) {
  return make_error(std::string(what) + std::strerror(err),
                    "check the agent's permissions on the file");
}

}  // namespace

Error over_file_cap_error(uint64_t size, uint64_t max_bytes) {
  return make_error("file of " + std::to_string(size) + " bytes is larger than the per-file cap "
                    "of " + std::to_string(max_bytes) + " bytes (max_file_bytes): not read",
                    "a stat file that large is almost certainly not one (anyone can create a "
                    "huge sparse file in /tmp); remove it, or raise max_file_bytes / "
                    "--max-file-bytes if it is genuine");
}

Status check_stat_file(const struct stat& st, uint64_t max_bytes) {
  if (!S_ISREG(st.st_mode)) return not_regular_error(st.st_mode);
  if (st.st_nlink > 1)
    return make_error("has " + std::to_string(st.st_nlink) + " hard links: not read",
                      "stat files have one link; a second one may be a user's link to a file "
                      "they cannot read themselves");
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > max_bytes)
    return over_file_cap_error(static_cast<uint64_t>(st.st_size), max_bytes);
  return Ok{};
}

StatFile StatFile::open(int dir_fd, const char* name, uint64_t max_bytes,
                        bool checked_before_open) {
  StatFile f;
  struct stat before;
  if (!checked_before_open && ::fstatat(dir_fd, name, &before, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) f.vanished_ = true;
    else f.error_ = errno_error("cannot stat: ", errno);
    return f;
  }
  if (auto st = checked_before_open ? Status(Ok{}) : check_stat_file(before, max_bytes); !st) {
    f.error_ = st.error();
    return f;
  }
  // O_NONBLOCK: a FIFO swapped in after the lstat must not hang us; O_NOCTTY: nor a tty.
  const int fd = ::openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) f.vanished_ = true;
    else if (errno == ELOOP) f.error_ = not_regular_error(S_IFLNK);  // swapped for a link
    else f.error_ = errno_error("cannot open: ", errno);
    return f;
  }
  if (::fstat(fd, &f.st_) != 0) {
    f.error_ = errno_error("cannot fstat: ", errno);
    ::close(fd);
    return f;
  }
  if (auto st = check_stat_file(f.st_, max_bytes); !st) {
    f.error_ = st.error();
    ::close(fd);
    return f;
  }
  f.fd_ = fd;
  return f;
}

StatFile::StatFile(StatFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      vanished_(other.vanished_),
      st_(other.st_),
      error_(std::move(other.error_)) {}

StatFile::~StatFile() {
  if (fd_ >= 0) ::close(fd_);
}

const uint8_t* StatFile::map(size_t size, Error& error) const {
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) {
    error = make_error("cannot map " + std::to_string(size) + " bytes: " + std::strerror(errno));
    return nullptr;
  }
  return static_cast<const uint8_t*>(p);
}

int64_t file_birth_ms(const std::string& path) {
  struct statx sx {};
  if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC, STATX_BTIME,
              &sx) != 0 ||
      !(sx.stx_mask & STATX_BTIME))
    return 0;
  return static_cast<int64_t>(sx.stx_btime.tv_sec) * 1000 + sx.stx_btime.tv_nsec / 1'000'000;
}

}  // namespace statherd::agent
