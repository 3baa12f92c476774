// Opening a stat file: every file source (mmstats v1, statherd v2, prometheus_client .db) opens
// its files here and nowhere else.
//
// Threat model: the watched directories are often world-writable (/tmp is mmstats' default) and
// the agent may run with CAP_DAC_READ_SEARCH, so anyone who can create a file there chooses
// what the agent opens. Hence:
// - a symbolic link is never followed: lstat first (fstatat AT_SYMLINK_NOFOLLOW), then
//   open(O_NOFOLLOW), so a link to a root-only file is refused, not exported;
// - only a regular file is opened: a FIFO, device or socket is refused before open() (opening a
//   device can have effects of its own); O_NONBLOCK and an fstat() after open() close the race
//   of a file swapped between the lstat and the open;
// - a file with more than one hard link is refused (a hard link is how a user would otherwise
//   plant someone else's file; kernels with fs.protected_hardlinks=0 allow it);
// - a file larger than the per-file cap (max_file_bytes, default 64 MiB) is refused before a
//   byte of it is read: a 1.5 GB sparse file costs nothing to make and would otherwise be
//   copied whole;
// - no message names a byte of the file: errors say what is wrong with the file as a file
//   (type, size, links, errno), and the SourceError carries its path.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/result.h"

namespace statherd::agent {

inline constexpr uint64_t kDefaultMaxFileBytes = uint64_t{64} << 20;
inline constexpr uint64_t kMinMaxFileBytes = 4096;

// An open, checked stat file (owns fd). ok(): fd and st are valid. vanished(): the file was
// gone by the time we looked (deleted between the directory scan and now: not an error).
// Otherwise error() says why it was refused or could not be opened.
class StatFile {
 public:
  // Opens `name` relative to dir_fd (AT_FDCWD: a path as it is) with the checks above.
  // checked_before_open: the caller has just lstat()ed it and passed check_stat_file (or the
  // directory entry said DT_REG), so the lstat before open() is skipped; O_NOFOLLOW,
  // O_NONBLOCK and the fstat() after open() still refuse a file swapped in since.
  static StatFile open(int dir_fd, const char* name, uint64_t max_bytes,
                       bool checked_before_open = false);

  StatFile(StatFile&& other) noexcept;
  StatFile& operator=(StatFile&&) = delete;
  StatFile(const StatFile&) = delete;
  ~StatFile();

  bool ok() const { return fd_ >= 0; }
  bool vanished() const { return vanished_; }
  int fd() const { return fd_; }
  const struct stat& st() const { return st_; }
  size_t size() const { return static_cast<size_t>(st_.st_size); }
  const Error& error() const { return error_; }

  // mmap(PROT_READ, MAP_SHARED) of the first `size` bytes (size > 0); nullptr and `error` if
  // mmap failed.
  const uint8_t* map(size_t size, Error& error) const;

 private:
  StatFile() = default;
  int fd_ = -1;
  bool vanished_ = false;
  struct stat st_ {};
  Error error_;
};

// Checks an lstat() result against the rules above without opening anything (the daemons stat
// every file every scrape; this refuses a file that became a link or grew past the cap).
// Ok, or the error StatFile::open would give.
Status check_stat_file(const struct stat& st, uint64_t max_bytes);

// "file of N bytes is larger than the per-file cap of M bytes (max_file_bytes)" + hint.
Error over_file_cap_error(uint64_t size, uint64_t max_bytes);

// When the file at `path` was created (statx birth time, wall clock ms, the link not followed);
// 0 when the filesystem does not record it or the file is gone.
int64_t file_birth_ms(const std::string& path);

}  // namespace statherd::agent
