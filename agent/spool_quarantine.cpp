#include "agent/spool_quarantine.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "agent/spool.h"
#include "agent/spool_dir.h"
#include "common/log.h"

namespace statherd::agent {
namespace {

constexpr std::string_view kSuffix = ".batch";
constexpr size_t kSeqDigits = 20;

bool parse_name(std::string_view name, uint64_t& seq) {
  if (name.size() != kSeqDigits + kSuffix.size() || name.substr(kSeqDigits) != kSuffix)
    return false;
  auto [p, ec] = std::from_chars(name.data(), name.data() + kSeqDigits, seq);
  return ec == std::errc() && p == name.data() + kSeqDigits;
}

std::string seq_name(uint64_t seq, std::string_view suffix) {
  char buf[kSeqDigits + 1];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(seq));
  return std::string(buf) + std::string(suffix);
}

}  // namespace

Result<SpoolQuarantine> SpoolQuarantine::open(const std::string& spool_dir,
                                              QuarantineLimits limits) {
  const std::string dir = spool_dir + "/quarantine";
  if (Status ok = prepare_spool_dir(dir, "spool quarantine dir"); !ok) return ok.error();
  SpoolQuarantine q(dir, limits);
  DIR* d = ::opendir(dir.c_str());
  if (!d)
    return make_error("cannot list " + dir + ": " + std::strerror(errno),
                      "check the permissions of the spool directory (--spool-dir)");
  while (dirent* e = ::readdir(d)) {
    uint64_t seq = 0;
    struct stat st {};
    if (parse_name(e->d_name, seq) && ::stat((dir + "/" + e->d_name).c_str(), &st) == 0) {
      q.files_[seq] = static_cast<uint64_t>(st.st_size);
      q.bytes_ += static_cast<uint64_t>(st.st_size);
    } else if (std::string_view(e->d_name).rfind(".tmp-", 0) == 0) {
      unlink_own_temp_file(dir + "/" + e->d_name);
    }
  }
  ::closedir(d);
  return q;
}

std::string SpoolQuarantine::path_of(uint64_t seq) const {
  return dir_ + "/" + seq_name(seq, kSuffix);
}

void SpoolQuarantine::record(uint64_t seq, uint64_t size, std::string_view reason) {
  // The reason is advisory: a failure to write it does not un-quarantine the batch.
  (void)write_file_atomically(dir_, seq_name(seq, ".why"), std::string(reason) + "\n");
  if (auto old = files_.find(seq); old != files_.end()) bytes_ -= old->second;
  files_[seq] = size;
  bytes_ += size;
  ++added_;
  log::error("quarantined batch seq " + std::to_string(seq) + " in " + path_of(seq) + ": " +
             std::string(reason) +
             "\nhint: the batch is kept for inspection; agent and server versions may disagree "
             "on the batch format (see --status, docs/OPERATIONS.md)");
  enforce_bound();
}

Status SpoolQuarantine::add(uint64_t seq, std::string_view body, std::string_view reason) {
  if (Status st = write_file_atomically(dir_, seq_name(seq, kSuffix), body); !st) return st;
  record(seq, body.size(), reason);
  return Ok{};
}

Status SpoolQuarantine::adopt(const std::string& path, uint64_t seq, std::string_view reason) {
  struct stat st {};
  const uint64_t size = ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  if (::rename(path.c_str(), path_of(seq).c_str()) != 0)
    return make_error("cannot move " + path + " into " + dir_ + ": " + std::strerror(errno),
                      "check the permissions of the spool directory (--spool-dir)");
  ::chmod(path_of(seq).c_str(), 0600);
  record(seq, size, reason);
  return Ok{};
}

// Oldest first, but never the batch just added (the newest).
void SpoolQuarantine::enforce_bound() {
  while (files_.size() > 1 && (files_.size() > limits_.max_batches || bytes_ > limits_.max_bytes)) {
    auto it = files_.begin();
    ::unlink(path_of(it->first).c_str());
    ::unlink((dir_ + "/" + seq_name(it->first, ".why")).c_str());
    bytes_ -= it->second;
    ++dropped_;
    log::warn("quarantine " + dir_ + " is over its bound (" + std::to_string(limits_.max_batches) +
              " batches, " + std::to_string(limits_.max_bytes) +
              " bytes): removed the oldest, seq " + std::to_string(it->first) + " (" +
              std::to_string(dropped_) + " removed so far)\nhint: inspect and clear " + dir_ +
              " after fixing the cause");
    files_.erase(it);
  }
}

}  // namespace statherd::agent
