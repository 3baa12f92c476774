#include "server/wal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/log.h"

namespace statherd::server {
namespace {

constexpr size_t kHeader = 8;
constexpr size_t kMaxRecord = 1u << 30;

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
uint64_t get_le(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

std::string errno_text() { return std::strerror(errno); }

bool read_whole_file(const std::string& path, std::string& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1 << 16];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return n == 0;
}

}  // namespace

uint32_t crc32_ieee(std::string_view bytes) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  uint32_t c = 0xFFFFFFFFu;
  for (char ch : bytes) c = table[(c ^ static_cast<uint8_t>(ch)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string wal_path(const std::string& dir, uint64_t number) {
  char name[48];
  std::snprintf(name, sizeof name, "wal-%016llu.log", static_cast<unsigned long long>(number));
  return dir + "/" + name;
}

WalWriter::~WalWriter() { close(); }

Status WalWriter::open(const std::string& dir, uint64_t number, bool fsync) {
  close();
  std::string path = wal_path(dir, number);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0)
    return make_error("cannot open write-ahead log " + path + ": " + errno_text(),
                      "check that --state-dir is writable and not full");
  struct stat st{};
  bytes_ = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  dir_ = dir;
  number_ = number;
  fsync_ = fsync;
  if (fsync_) {
    Status s = fsync_dir(dir);
    if (!s) return s;
  }
  return Ok{};
}

void WalWriter::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status WalWriter::append(int64_t now_ms, std::string_view batch) {
  if (fd_ < 0) return make_error("write-ahead log is not open", "restart the server");
  buffer_.clear();
  buffer_.reserve(kHeader + 8 + batch.size());
  uint32_t body_len = static_cast<uint32_t>(8 + batch.size());
  put_u32(buffer_, body_len);
  put_u32(buffer_, 0);  // crc placeholder
  put_u64(buffer_, static_cast<uint64_t>(now_ms));
  buffer_.append(batch);
  uint32_t crc = crc32_ieee(std::string_view(buffer_).substr(kHeader));
  for (int i = 0; i < 4; ++i) buffer_[4 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);

  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = errno_text();
      // Cut a partial record off so later records are not hidden behind a torn one.
      if (::ftruncate(fd_, static_cast<off_t>(bytes_)) != 0) close();
      return make_error("write-ahead log write failed: " + why,
                        "free space in --state-dir; the batch was not acknowledged");
    }
    done += static_cast<size_t>(n);
  }
  if (fsync_ && ::fdatasync(fd_) != 0) {
    std::string why = errno_text();
    if (::ftruncate(fd_, static_cast<off_t>(bytes_)) != 0) close();
    return make_error("write-ahead log fsync failed: " + why, "check the disk under --state-dir");
  }
  bytes_ += buffer_.size();
  return Ok{};
}

std::vector<uint64_t> list_wal_files(const std::string& dir) {
  std::vector<uint64_t> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    unsigned long long n = 0;
    char tail[8] = {};
    if (std::sscanf(e->d_name, "wal-%llu.%4s", &n, tail) == 2 && std::strcmp(tail, "log") == 0)
      out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Status replay_wal_file(const std::string& path,
                       const std::function<void(const WalRecord&)>& fn) {
  std::string data;
  if (!read_whole_file(path, data))
    return make_error("cannot read write-ahead log " + path + ": " + errno_text(),
                      "check permissions of --state-dir");
  size_t pos = 0;
  while (pos < data.size()) {
    size_t left = data.size() - pos;
    if (left < kHeader) break;
    uint64_t len = get_le(data.data() + pos, 4);
    uint32_t crc = static_cast<uint32_t>(get_le(data.data() + pos + 4, 4));
    if (len < 8 || len > kMaxRecord || len > left - kHeader) break;
    std::string_view body(data.data() + pos + kHeader, len);
    if (crc32_ieee(body) != crc) break;
    WalRecord rec{static_cast<int64_t>(get_le(body.data(), 8)), body.substr(8)};
    fn(rec);
    pos += kHeader + len;
  }
  if (pos < data.size()) {
    log::warn("write-ahead log " + path + ": torn record at offset " + std::to_string(pos) +
              " (" + std::to_string(data.size() - pos) + " bytes) truncated away; it was never "
              "acknowledged");
    if (::truncate(path.c_str(), static_cast<off_t>(pos)) != 0)
      return make_error("cannot truncate torn write-ahead log " + path + ": " + errno_text(),
                        "check permissions of --state-dir");
  }
  return Ok{};
}

void remove_wal_files_before(const std::string& dir, uint64_t keep_from) {
  for (uint64_t n : list_wal_files(dir))
    if (n < keep_from) ::unlink(wal_path(dir, n).c_str());
}

Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return make_error("cannot open directory " + dir + ": " + errno_text());
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return make_error("fsync of directory " + dir + " failed: " + errno_text());
  return Ok{};
}

}  // namespace statherd::server
