#include "agent/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "agent/spool_dir.h"
#include "common/log.h"

namespace statherd::agent {
namespace {

constexpr std::string_view kBatchSuffix = ".batch";
constexpr std::string_view kPartsSuffix = ".parts";
constexpr std::string_view kTmpPrefix = ".tmp-";
constexpr size_t kSeqDigits = 20;

Error io_error(const std::string& what, const std::string& path) {
  return make_error(what + " " + path + ": " + std::strerror(errno),
                    "check that the spool directory exists, is owned by the agent user and the "
                    "disk is not full (--spool-dir DIR)");
}

bool parse_u64(std::string_view text, uint64_t& out) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size() && !text.empty();
}

// "00000000000000000042.batch" -> 42 (and ".parts").
bool parse_batch_name(std::string_view name, std::string_view suffix, uint64_t& seq) {
  if (name.size() != kSeqDigits + suffix.size()) return false;
  if (name.substr(kSeqDigits) != suffix) return false;
  return parse_u64(name.substr(0, kSeqDigits), seq);
}

// The first multiple of kSeqStride whose whole window lies above `used` (the highest seq that
// may have been handed out).
uint64_t window_after(uint64_t used) {
  return (used + 2 * kSeqStride - 1) / kSeqStride * kSeqStride;
}

Status write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Ok{};
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

Status write_file_atomically(const std::string& dir, const std::string& name,
                             std::string_view data) {
  const std::string tmp = dir + "/" + std::string(kTmpPrefix) + name;
  const std::string final_path = dir + "/" + name;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("cannot create", tmp);
  Status st = write_all(fd, data, tmp);
  if (st && ::fsync(fd) != 0) st = io_error("cannot fsync", tmp);
  ::close(fd);
  if (st && ::rename(tmp.c_str(), final_path.c_str()) != 0) st = io_error("cannot rename", tmp);
  if (!st) {
    ::unlink(tmp.c_str());
    return st;
  }
  fsync_dir(dir);
  return Ok{};
}

Result<std::unique_ptr<Spool>> Spool::open(std::string dir, uint64_t max_bytes, int64_t now_ms,
                                           QuarantineLimits limits) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  // Created 0700 if missing; an existing one is checked (never chmod-ed: it may be shared).
  if (Status ok = prepare_spool_dir(dir); !ok) return ok.error();
  auto quarantine = SpoolQuarantine::open(dir, limits);
  if (!quarantine) return quarantine.error();
  std::unique_ptr<Spool> spool(new Spool(dir, max_bytes, std::move(*quarantine)));
  if (auto s = spool->scan(); !s) return s.error();
  if (auto s = spool->load_state(now_ms); !s) return s.error();
  return spool;
}

Status Spool::scan() {
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return io_error("cannot list", dir_);
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    uint64_t seq = 0;
    if (name.rfind(kTmpPrefix, 0) == 0) {
      // A write that never reached its rename: the batch was not acknowledged as stored.
      unlink_own_temp_file(dir_ + "/" + std::string(name));
    } else if (bool split = parse_batch_name(name, kPartsSuffix, seq);
               split || parse_batch_name(name, kBatchSuffix, seq)) {
      struct stat st {};
      if (::stat((dir_ + "/" + std::string(name)).c_str(), &st) != 0) continue;
      // <seq>.batch and <seq>.parts both: the split was stored (renamed) but the agent stopped
      // before it removed the batch file. The parts win; the whole batch is never sent again.
      Entry& entry = batches_[seq];
      if (entry.size > 0) {
        ::unlink(file_of(seq, false).c_str());
        if (!split) continue;
      }
      entry = {static_cast<uint64_t>(st.st_size), split};
    }
  }
  ::closedir(d);
  for (const auto& [seq, entry] : batches_) bytes_ += entry.size;
  return Ok{};
}

Status Spool::load_state(int64_t now_ms) {
  const std::string path = dir_ + "/state";
  bool have_state = false, have_stride = false;
  if (FILE* f = std::fopen(path.c_str(), "re")) {
    char key[32];
    unsigned long long number = 0;
    while (std::fscanf(f, "%31s %llu", key, &number) == 2) {
      if (std::strcmp(key, "next_seq") == 0) {
        next_seq_ = number;
        have_state = true;
      } else if (std::strcmp(key, "last_scrape_ms") == 0) {
        last_scrape_ms_ = static_cast<int64_t>(number);
      } else if (std::strcmp(key, "stride_from") == 0) {
        stride_from_ = number;
        have_stride = true;
      }
    }
    std::fclose(f);
  }
  // Seqs start at the wall clock (ms) times the stride, and never below it: an agent that
  // shipped batches its full disk kept it from recording (begin_batch_unsaved) has used seqs
  // above the state file's, but below this.
  const uint64_t clock_floor = (now_ms > 0 ? static_cast<uint64_t>(now_ms) : 1) * kSeqStride;
  if (!have_state) {
    next_seq_ = clock_floor;
  } else if (!have_stride || next_seq_ % kSeqStride != 0) {
    next_seq_ = window_after(next_seq_ - 1);  // state of an agent that counted in steps of 1
  }
  next_seq_ = std::max(next_seq_, clock_floor);
  // Never reuse a seq that is still spooled, whatever the state file says.
  if (!batches_.empty() && batches_.rbegin()->first + kSeqStride > next_seq_)
    next_seq_ = window_after(batches_.rbegin()->first);
  if (!have_stride || stride_from_ > next_seq_) stride_from_ = next_seq_;
  return Ok{};
}

Status Spool::save_state() {
  std::string text = "next_seq " + std::to_string(next_seq_) + "\nlast_scrape_ms " +
                     std::to_string(last_scrape_ms_ < 0 ? 0 : last_scrape_ms_) +
                     "\nstride_from " + std::to_string(stride_from_) + "\n";
  return write_file_atomically(dir_, "state", text);
}

Result<uint64_t> Spool::begin_batch(int64_t scrape_ms) {
  uint64_t seq = begin_batch_unsaved(scrape_ms);
  if (auto st = save_state(); !st) return st.error();
  return seq;
}

uint64_t Spool::begin_batch_unsaved(int64_t scrape_ms) {
  uint64_t seq = next_seq_;
  next_seq_ = seq + kSeqStride;
  last_scrape_ms_ = scrape_ms;
  return seq;
}

std::string Spool::file_of(uint64_t seq, bool split) const {
  char name[kSeqDigits + 1];
  std::snprintf(name, sizeof name, "%020llu", static_cast<unsigned long long>(seq));
  return dir_ + "/" + name + std::string(split ? kPartsSuffix : kBatchSuffix);
}

std::string Spool::path_of(uint64_t seq) const {
  auto it = batches_.find(seq);
  return file_of(seq, it != batches_.end() && it->second.split);
}

uint64_t Spool::window_floor(uint64_t seq) const {
  if (seq >= stride_from_ && seq % kSeqStride == 0) return seq - kSeqStride;
  return seq - 1;
}

void Spool::drop_oldest_except(uint64_t keep) {
  auto it = batches_.begin();
  if (it->first == keep) ++it;
  if (it == batches_.end()) return;
  ::unlink(path_of(it->first).c_str());
  bytes_ -= it->second.size;
  ++dropped_;
  log::warn("spool " + dir_ + " is over its bound: dropped the oldest batch seq " +
            std::to_string(it->first) + " (" + std::to_string(dropped_) +
            " dropped so far)\nhint: the server has been unreachable for long; raise "
            "--spool-max-bytes to keep more");
  batches_.erase(it);
}

Status Spool::put(uint64_t seq, std::string_view encoded) {
  if (encoded.size() > max_bytes_) {
    ++dropped_;
    return make_error("batch seq " + std::to_string(seq) + " (" + std::to_string(encoded.size()) +
                          " bytes) is larger than the whole spool bound (" +
                          std::to_string(max_bytes_) + " bytes); dropped",
                      "raise --spool-max-bytes");
  }
  std::string name = file_of(seq, false).substr(dir_.size() + 1);
  // Written first: room is made only for a batch that is safely on disk.
  if (auto st = write_file_atomically(dir_, name, encoded); !st) return st;
  if (auto old = batches_.find(seq); old != batches_.end()) {
    if (old->second.split) ::unlink(file_of(seq, true).c_str());
    bytes_ -= old->second.size;
  }
  batches_[seq] = {encoded.size(), false};
  bytes_ += encoded.size();
  while (batches_.size() > 1 && bytes_ > max_bytes_) drop_oldest_except(seq);
  return Ok{};
}

Status Spool::replace_parts(uint64_t seq, const std::vector<SpoolPart>& parts) {
  auto it = batches_.find(seq);
  if (it == batches_.end())
    return make_error("batch seq " + std::to_string(seq) + " is not in the spool " + dir_);
  const std::string data = encode_parts(parts);
  const std::string name = file_of(seq, true).substr(dir_.size() + 1);
  if (auto st = write_file_atomically(dir_, name, data); !st) return st;
  if (!it->second.split) ::unlink(file_of(seq, false).c_str());
  bytes_ = bytes_ - it->second.size + data.size();
  it->second = {data.size(), true};
  return Ok{};
}

Result<std::vector<SpoolPart>> Spool::read_parts(uint64_t seq) const {
  auto data = read(seq);
  if (!data) return data.error();
  auto it = batches_.find(seq);
  if (it != batches_.end() && it->second.split) return decode_parts(*data, path_of(seq));
  return std::vector<SpoolPart>{{window_floor(seq), seq, std::move(*data)}};
}

Status Spool::quarantine_file(uint64_t seq, std::string_view reason) {
  auto it = batches_.find(seq);
  if (it == batches_.end()) return Ok{};
  // If it cannot even be moved, it stays on disk (found again at the next start) but leaves
  // the queue, which it would block.
  Status st = quarantine_.adopt(path_of(seq), seq, reason);
  bytes_ -= it->second.size;
  batches_.erase(it);
  return st;
}

std::vector<uint64_t> Spool::pending() const {
  std::vector<uint64_t> out;
  out.reserve(batches_.size());
  for (const auto& [seq, entry] : batches_) out.push_back(seq);
  return out;
}

Result<std::string> Spool::read(uint64_t seq) const {
  const std::string path = path_of(seq);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open spooled batch", path);
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error e = io_error("cannot read spooled batch", path);
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

void Spool::remove(uint64_t seq) {
  auto it = batches_.find(seq);
  if (it == batches_.end()) return;
  ::unlink(path_of(seq).c_str());
  bytes_ -= it->second.size;
  batches_.erase(it);
}

}  // namespace statherd::agent
