// MappedStatFile: one stat file kept mapped between scrapes - the mechanics every file source
// (mmstats v1, statherd v2, prometheus_client .db) shares; each source keeps only its decoder.
//
// - Opening goes through StatFile (stat_file.h): no symlink, regular files with one link, at
//   most max_bytes (the per-file cap). The whole file is mapped as fstat() sees it at open.
// - Remap: ensure_mapped() maps the file again when an lstat() shows another inode (the name
//   was replaced) or another size than the mapping (grown: the new bytes become readable;
//   shrunk: pages past the new end would SIGBUS). Nothing is remapped for an unchanged file.
// - Every read of the mapping is a SIGBUS-guarded copy (agent/mapped_guard.h): a writer (or a
//   third party) truncating the file between our lstat() and the read makes the copy fail with
//   mapped_file_shrank_error(), never kills the agent. The source then unmaps the file (its
//   pages past the new end stay poisoned) and maps it as it is at the next scrape. Decoders
//   parse the copies ("images", at the file's offsets), never the mapping itself.
// - Hazard kept with the caller: whatever a guarded GuardedFn does must be jump-safe (only
//   loads and copies into memory allocated before the call; see mapped_guard.h).
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/mapped_guard.h"
#include "agent/sources/stat_file.h"
#include "common/result.h"

namespace statherd::agent {

// What an lstat() says of a file, compared scrape to scrape.
struct FileIdentity {
  uint64_t inode = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
  static FileIdentity of(const struct stat& st);
};

// How a source maps its files.
struct MapRules {
  uint64_t max_bytes = kDefaultMaxFileBytes;  // the per-file cap (max_file_bytes)
  size_t min_bytes = 1;                       // a shorter file is not mapped: too_short()
  Error (*too_short)() = nullptr;             // null: a generic "shorter than N bytes" error
};

class MappedStatFile {
 public:
  MappedStatFile() = default;
  ~MappedStatFile() { unmap(); }
  MappedStatFile(const MappedStatFile&) = delete;
  MappedStatFile& operator=(const MappedStatFile&) = delete;

  // Opens `name` relative to dir_fd (AT_FDCWD: a path as it is) and maps the whole file, after
  // unmapping whatever was mapped. checked_before_open: as StatFile::open (the caller has just
  // lstat()ed and checked it). A file deleted since is an error saying so.
  Status map(int dir_fd, const char* name, const MapRules& rules, bool checked_before_open = true);
  // Maps (again) unless the current mapping is of the file `st` describes (same inode and size).
  Status ensure_mapped(int dir_fd, const char* name, const struct stat& st, const MapRules& rules);
  void unmap();

  bool mapped() const { return data_ != nullptr; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  uint64_t inode() const { return inode_; }
  bool maps(const struct stat& st) const {
    return data_ && inode_ == st.st_ino && static_cast<int64_t>(size_) == st.st_size;
  }

  // SIGBUS-guarded: runs fn, which reads [data(), data() + size()). False, with `fault` set,
  // if the file shrank under the read (see mapped_guard.h); the caller then unmaps.
  bool read(GuardedFn fn, std::string& fault) const;
  // SIGBUS-guarded memcpy of [offset, offset + n) into dst; false (and `fault`) on a fault or
  // a range past the mapping.
  bool copy(size_t offset, size_t n, void* dst, std::string& fault) const;
  // The same into `image` at the same offsets; image is grown to size() first (never shrunk,
  // so one image serves every file of a source without a zero-fill per file).
  bool copy_to_image(std::vector<uint8_t>& image, size_t offset, size_t n,
                     std::string& fault) const;

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint64_t inode_ = 0;
};

// The error of a file that disappeared between the directory scan and its open.
Error file_deleted_error();

// Copies the file behind fd from offset 0 into buf[0, n) with pread(), growing buf (capacity is
// kept for the next file) until a short read or `limit` bytes. Returns n, or an Error. The
// --once paths read files this way instead of mapping them.
Result<size_t> copy_whole_file(int fd, std::vector<uint8_t>& buf, size_t limit);

}  // namespace statherd::agent
