// See mapped_stat_file.h.
#include "agent/sources/mapped_stat_file.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace statherd::agent {

FileIdentity FileIdentity::of(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_ino), static_cast<int64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

Error file_deleted_error() {
  return make_error("cannot open: the file was deleted", "none needed");
}

Status MappedStatFile::map(int dir_fd, const char* name, const MapRules& rules,
                           bool checked_before_open) {
  unmap();
  const StatFile file = StatFile::open(dir_fd, name, rules.max_bytes, checked_before_open);
  if (file.vanished()) return file_deleted_error();
  if (!file.ok()) return file.error();
  const size_t min_bytes = std::max<size_t>(rules.min_bytes, 1);  // mmap() of 0 bytes fails
  if (file.size() < min_bytes) {
    if (rules.too_short) return rules.too_short();
    return make_error("file of " + std::to_string(file.size()) + " bytes is shorter than " +
                          std::to_string(min_bytes) + " bytes: not read",
                      "the writer may be starting; it is read again next scrape");
  }
  Error error;
  data_ = file.map(file.size(), error);
  if (!data_) return error;
  size_ = file.size();
  inode_ = static_cast<uint64_t>(file.st().st_ino);
  return Ok{};
}

Status MappedStatFile::ensure_mapped(int dir_fd, const char* name, const struct stat& st,
                                     const MapRules& rules) {
  if (maps(st)) return Ok{};
  return map(dir_fd, name, rules);
}

void MappedStatFile::unmap() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
  inode_ = 0;
}

bool MappedStatFile::read(GuardedFn fn, std::string& fault) const {
  return guarded_read(data_, size_, fn, fault);
}

bool MappedStatFile::copy(size_t offset, size_t n, void* dst, std::string& fault) const {
  if (offset > size_ || n > size_ - offset) {
    fault = "read of " + std::to_string(n) + " bytes at offset " + std::to_string(offset) +
            " past the mapping of " + std::to_string(size_) + " bytes";
    return false;
  }
  if (n == 0) return true;
  return guarded_copy(data_, size_, offset, n, dst, fault);
}

bool MappedStatFile::copy_to_image(std::vector<uint8_t>& image, size_t offset, size_t n,
                                   std::string& fault) const {
  if (image.size() < size_) image.resize(size_);
  return copy(offset, n, image.data() + offset, fault);
}

Result<size_t> copy_whole_file(int fd, std::vector<uint8_t>& buf, size_t limit) {
  constexpr size_t kInitial = 64 * 1024;
  if (buf.size() < std::min(kInitial, limit)) buf.resize(std::min(kInitial, limit));
  size_t n = 0;
  while (n < limit) {
    if (n == buf.size()) buf.resize(std::min(limit, buf.size() * 2));
    const size_t room = std::min(buf.size(), limit) - n;  // buf may be longer than limit
    const ssize_t got = ::pread(fd, buf.data() + n, room, static_cast<off_t>(n));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return make_error(std::string("cannot read: ") + std::strerror(errno),
                                   "check the agent's permissions on the file");
    if (got == 0) break;
    n += static_cast<size_t>(got);
    if (static_cast<size_t>(got) < room) break;  // a short read of a regular file: its end
  }
  return n;
}

}  // namespace statherd::agent
