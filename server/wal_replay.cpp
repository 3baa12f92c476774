// WAL replay: walk one file's records (format 2, or format 1 written before the upgrade), skip
// damaged records by resynchronising on the next verified header, and truncate only a torn
// tail of the newest file. Byte layout: server/wal.h and docs/FORMAT.md ("Server WAL").
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "server/wal.h"

namespace statherd::server {
namespace {

constexpr uint32_t kRecordMagic = 0x52574853u;  // "SHWR"
constexpr size_t kHeader2 = 16;
constexpr size_t kHeader1 = 8;
constexpr size_t kMaxRecord = 1u << 30;

uint64_t get_le(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

bool read_whole_file(const std::string& path, std::string& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1 << 16];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return n == 0;
}

enum class Check { Ok, Bad, PastEnd };

// Does a format 2 record start at pos? PastEnd: a verified header whose body runs past the end.
Check check_record2(std::string_view data, size_t pos, uint64_t& len) {
  if (data.size() - pos < kHeader2) return Check::PastEnd;
  const char* h = data.data() + pos;
  if (get_le(h, 4) != kRecordMagic) return Check::Bad;
  if (crc32_ieee(std::string_view(h, 12)) != get_le(h + 12, 4)) return Check::Bad;
  len = get_le(h + 4, 4);
  if (len < 8 || len > kMaxRecord) return Check::Bad;
  if (len > data.size() - pos - kHeader2) return Check::PastEnd;
  if (crc32_ieee(std::string_view(h + kHeader2, len)) != get_le(h + 8, 4)) return Check::Bad;
  return Check::Ok;
}

// The next offset after `from` where an intact format 2 record starts; data.size() if none.
size_t resync2(std::string_view data, size_t from) {
  const char magic[4] = {'S', 'H', 'W', 'R'};
  for (size_t p = from; p + kHeader2 <= data.size(); ++p) {
    if (std::memcmp(data.data() + p, magic, 4) != 0) continue;
    uint64_t len = 0;
    if (check_record2(data, p, len) == Check::Ok) return p;
  }
  return data.size();
}

bool all_zero(std::string_view s) {
  for (char c : s)
    if (c != 0) return false;
  return true;
}

void report_damage(const std::string& path, size_t pos, size_t bytes, WalReplayReport& report) {
  log::warn("write-ahead log " + path + ": damaged record at offset " + std::to_string(pos) +
            " (" + std::to_string(bytes) + " bytes) skipped; replay goes on after it\n"
            "hint: the disk or something else changed the file; the damaged bytes are kept in "
            "the state dir's quarantine/ folder");
  report.damaged.push_back({path, pos, bytes});
}

// A tail is torn when it holds no intact record and looks like an interrupted append.
bool torn_tail(std::string_view data, size_t pos, bool format2) {
  std::string_view tail = data.substr(pos);
  if (all_zero(tail)) return true;
  if (format2) {
    uint64_t len = 0;
    return check_record2(data, pos, len) == Check::PastEnd &&
           (tail.size() < kHeader2 || get_le(tail.data(), 4) == kRecordMagic);
  }
  if (tail.size() < kHeader1) return true;
  uint64_t len = get_le(tail.data(), 4);
  return len >= 8 && len <= kMaxRecord && len > tail.size() - kHeader1;
}

// Format 1: no sync marker; stops at the first record that does not verify. Returns its offset.
size_t replay_format1(std::string_view data, const std::function<void(const WalRecord&)>& fn,
                      WalReplayReport& report) {
  size_t pos = 0;
  while (data.size() - pos >= kHeader1) {
    uint64_t len = get_le(data.data() + pos, 4);
    uint32_t crc = static_cast<uint32_t>(get_le(data.data() + pos + 4, 4));
    if (len < 8 || len > kMaxRecord || len > data.size() - pos - kHeader1) break;
    std::string_view body = data.substr(pos + kHeader1, len);
    if (crc32_ieee(body) != crc) break;
    fn(WalRecord{static_cast<int64_t>(get_le(body.data(), 8)), body.substr(8), pos,
                 data.substr(pos, kHeader1 + len)});
    ++report.records;
    pos += kHeader1 + len;
  }
  return pos;
}

}  // namespace

Status replay_wal_file(const std::string& path, bool newest,
                       const std::function<void(const WalRecord&)>& fn, WalReplayReport& report) {
  std::string bytes;
  if (!read_whole_file(path, bytes))
    return make_error("cannot read write-ahead log " + path + ": " + std::strerror(errno),
                      "check permissions of --state-dir");
  std::string_view data(bytes);
  bool format2 = data.starts_with(std::string_view(kWalFileHeader, sizeof kWalFileHeader));
  size_t pos = format2 ? sizeof kWalFileHeader : 0;
  // A damaged file header: the records after it still carry their sync markers.
  if (!format2 && data.size() >= sizeof kWalFileHeader + kHeader2 &&
      resync2(data, 0) < data.size())
    format2 = true;
  if (!format2) pos = replay_format1(data, fn, report);
  while (format2 && pos < data.size()) {
    uint64_t len = 0;
    if (check_record2(data, pos, len) == Check::Ok) {
      std::string_view body = data.substr(pos + kHeader2, len);
      fn(WalRecord{static_cast<int64_t>(get_le(body.data(), 8)), body.substr(8), pos,
                   data.substr(pos, kHeader2 + len)});
      ++report.records;
      pos += kHeader2 + len;
      continue;
    }
    size_t next = resync2(data, pos + 1);
    if (next == data.size()) break;  // nothing intact after pos: the tail, handled below
    report_damage(path, pos, next - pos, report);
    pos = next;
  }
  if (pos >= data.size()) return Ok{};
  if (newest && torn_tail(data, pos, format2)) {
    log::warn("write-ahead log " + path + ": torn tail at offset " + std::to_string(pos) + " (" +
              std::to_string(data.size() - pos) + " bytes, an append cut short by a crash) "
              "truncated away; it was never acknowledged");
    report.torn_bytes += data.size() - pos;
    if (::truncate(path.c_str(), static_cast<off_t>(pos)) != 0)
      return make_error("cannot truncate torn write-ahead log " + path + ": " +
                            std::strerror(errno),
                        "check permissions of --state-dir");
    return Ok{};
  }
  report_damage(path, pos, data.size() - pos, report);
  return Ok{};
}

}  // namespace statherd::server
