#include "server/sinks/remote_write_outbox.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "server/wal.h"

namespace statherd::server {

namespace {

constexpr std::string_view kMagic = "SHRWOB1\n";
constexpr uint64_t kMaxFileBytes = 256ull << 20;  // far above any request (batch_max_samples)

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_i64(std::string& out, int64_t v) {
  const auto u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}
void put_bytes(std::string& out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// Bounds-checked little-endian reader: every read fails (and stays failed) past the end.
struct Cursor {
  std::string_view in;
  size_t pos = 0;
  bool ok = true;
  uint64_t le(size_t n) {
    if (!ok || in.size() - pos < n) return ok = false, 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(in[pos + i])} << (8 * i);
    pos += n;
    return v;
  }
  std::string bytes() {
    const uint64_t n = le(4);
    if (!ok || in.size() - pos < n) return ok = false, std::string();
    std::string s(in.substr(pos, n));
    pos += n;
    return s;
  }
};

}  // namespace

std::string encode_rw_pending(const RwPending& p) {
  std::string payload;
  put_bytes(payload, p.url);
  put_u32(payload, static_cast<uint32_t>(p.marks.size()));
  for (const auto& [key, ms] : p.marks) {
    put_bytes(payload, key);
    put_i64(payload, ms);
  }
  put_bytes(payload, p.body);
  std::string out(kMagic);
  put_u32(out, crc32_ieee(payload));
  return out + payload;
}

Result<RwPending> decode_rw_pending(std::string_view bytes) {
  if (bytes.size() < kMagic.size() + 4 || bytes.substr(0, kMagic.size()) != kMagic)
    return make_error("not a remote_write outbox (bad magic or shorter than its header)");
  Cursor c{bytes, kMagic.size()};
  const auto crc = static_cast<uint32_t>(c.le(4));
  if (crc != crc32_ieee(bytes.substr(c.pos)))
    return make_error("checksum mismatch (torn or damaged file)");
  RwPending p;
  p.url = c.bytes();
  const uint64_t marks = c.le(4);
  for (uint64_t i = 0; c.ok && i < marks; ++i) {
    std::string key = c.bytes();
    const auto ms = static_cast<int64_t>(c.le(8));
    if (c.ok) p.marks.emplace_back(std::move(key), ms);
  }
  p.body = c.bytes();
  if (!c.ok || c.pos != bytes.size())
    return make_error("lengths do not match the file's size (truncated or garbage)");
  return p;
}

Status write_rw_state_file(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error("cannot create " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      return make_error("cannot write " + tmp + ": " + why);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return make_error("fsync of " + tmp + " failed: " + why);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return make_error("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
  const size_t slash = path.rfind('/');
  return fsync_dir(slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash));
}

RwOutbox::RwOutbox(std::string path) : path_(std::move(path)) {}

std::optional<RwPending> RwOutbox::left_over() const {
  if (path_.empty()) return std::nullopt;
  // Regular files only: a FIFO would block the sink (and the shutdown) for good, a symlink
  // would read some other file; either is set aside as unusable below.
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0 && errno == ELOOP) return set_aside("it is a symbolic link");
  if (fd < 0) {
    if (errno != ENOENT)
      log::warn("remote_write: cannot read " + path_ + ": " + std::strerror(errno) +
                "\nhint: the request in flight at the last stop is not resent; check the state "
                "directory's permissions");
    return std::nullopt;
  }
  struct stat st{};
  std::string bytes;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return set_aside("it is not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxFileBytes) {
    ::close(fd);
    return set_aside("it is larger than " + std::to_string(kMaxFileBytes) + " bytes");
  }
  {
    bytes.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    bytes.resize(done);
  }
  ::close(fd);
  Result<RwPending> p = decode_rw_pending(bytes);
  if (p) return std::move(*p);
  return set_aside(p.error().message);
}

std::optional<RwPending> RwOutbox::set_aside(const std::string& why) const {
  const std::string aside = path_ + ".damaged";
  ::rename(path_.c_str(), aside.c_str());
  log::error("remote_write: " + path_ + " is unusable: " + why + "; moved to " +
             aside + "\nhint: the request in flight at the last stop is not resent; samples the "
             "receiver already holds are skipped by the high-water floor, a few may be refused "
             "once as duplicates");
  return std::nullopt;
}

void RwOutbox::put(const RwPending& pending) {
  if (path_.empty()) return;
  Status s = write_rw_state_file(path_, encode_rw_pending(pending));
  if (!s && !failing_)
    log::warn("remote_write: " + s.error().message + "\nhint: sending anyway; a crash before "
              "the answer may then make the receiver refuse the restarted server's first "
              "samples as duplicates. Check the disk under the state directory");
  failing_ = !s;
}

void RwOutbox::clear() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

}  // namespace statherd::server
