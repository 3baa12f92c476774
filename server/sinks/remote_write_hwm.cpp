#include "server/sinks/remote_write_hwm.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>

#include "common/log.h"

namespace statherd::server {

namespace {
constexpr int64_t kNoMark = std::numeric_limits<int64_t>::min();
// Marks this much older than the newest accepted sample are forgotten: within one run a series'
// samples only move forward (re-emitted intervals are not sent), so an old mark filters nothing.
constexpr int64_t kPruneAgeMs = 3600 * 1000;
}  // namespace

std::string rw_series_key(const std::vector<RwLabel>& labels) {
  std::string key;
  for (const RwLabel& l : labels) {
    key += l.name;
    key += '\x1f';
    key += l.value;
    key += '\x1e';
  }
  return key;
}

RwHighWater::RwHighWater(std::string path, std::string url)
    : path_(std::move(path)), url_(std::move(url)), floor_ms_(kNoMark), newest_ms_(kNoMark) {
  if (path_.empty()) return;
  load();
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0)
    log::warn("remote_write: cannot open " + path_ + ": " + std::strerror(errno) +
              "\nhint: after a restart, samples the receiver already holds may be sent again "
              "(and refused as out of order); check the state directory's permissions");
}

RwHighWater::~RwHighWater() {
  if (fd_ >= 0) ::close(fd_);
}

void RwHighWater::load() {
  std::FILE* f = std::fopen(path_.c_str(), "re");
  if (f == nullptr) return;
  long long ms = 0;
  char url[2048] = {};
  const int n = std::fscanf(f, "%lld %2047s", &ms, url);
  std::fclose(f);
  if (n == 2 && url_ == url) floor_ms_ = newest_ms_ = ms;
}

void RwHighWater::set_url(const std::string& url) {
  if (url == url_) return;
  url_ = url;
  marks_.clear();
  floor_ms_ = newest_ms_ = kNoMark;
}

uint64_t RwHighWater::filter(std::vector<RwSeries>& batch) const {
  uint64_t removed = 0;
  for (RwSeries& s : batch) {
    int64_t mark = floor_ms_;
    if (!marks_.empty()) {
      auto it = marks_.find(rw_series_key(s.labels));
      if (it != marks_.end()) mark = std::max(mark, it->second);
    }
    if (mark == kNoMark) continue;
    const size_t before = s.samples.size();
    std::erase_if(s.samples, [&](const RwSample& x) { return x.timestamp_ms <= mark; });
    removed += before - s.samples.size();
  }
  std::erase_if(batch, [](const RwSeries& s) { return s.samples.empty(); });
  return removed;
}

void RwHighWater::accepted(const std::vector<RwSeries>& batch) {
  const int64_t before = newest_ms_;
  for (const RwSeries& s : batch) {
    if (s.samples.empty()) continue;
    int64_t newest = kNoMark;
    for (const RwSample& x : s.samples) newest = std::max(newest, x.timestamp_ms);
    auto [it, fresh] = marks_.try_emplace(rw_series_key(s.labels), newest);
    if (!fresh) it->second = std::max(it->second, newest);
    newest_ms_ = std::max(newest_ms_, newest);
  }
  if (marks_.size() >= prune_at_) prune();
  if (newest_ms_ != before) persist();
}

void RwHighWater::prune() {
  std::erase_if(marks_, [&](const auto& kv) { return kv.second < newest_ms_ - kPruneAgeMs; });
  prune_at_ = std::max<size_t>(4096, marks_.size() * 2);
}

void RwHighWater::persist() {
  if (fd_ < 0) return;
  const std::string line = std::to_string(newest_ms_) + " " + url_ + "\n";
  if (::pwrite(fd_, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size()) ||
      ::ftruncate(fd_, static_cast<off_t>(line.size())) != 0) {
    log::warn("remote_write: cannot write " + path_ + ": " + std::strerror(errno) +
              "\nhint: after a restart, samples the receiver already holds may be sent again");
  }
}

}  // namespace statherd::server
