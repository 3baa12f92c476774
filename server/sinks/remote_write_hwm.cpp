#include "server/sinks/remote_write_hwm.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "common/log.h"
#include "server/sinks/remote_write_outbox.h"

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

RwMarks rw_marks_of(const std::vector<RwSeries>& batch) {
  RwMarks marks;
  marks.reserve(batch.size());
  for (const RwSeries& s : batch) {
    if (s.samples.empty()) continue;
    int64_t newest = kNoMark;
    for (const RwSample& x : s.samples) newest = std::max(newest, x.timestamp_ms);
    marks.emplace_back(rw_series_key(s.labels), newest);
  }
  return marks;
}

RwHighWater::RwHighWater(std::string path, std::string url)
    : path_(std::move(path)),
      url_(std::move(url)),
      floor_ms_(kNoMark),
      newest_ms_(kNoMark),
      hint_ms_(kNoMark) {
  if (!path_.empty()) load();
}

RwHighWater::~RwHighWater() = default;

// "<ms> <url>\n" and nothing else; anything else is logged and ignored.
void RwHighWater::load() {
  std::FILE* f = std::fopen(path_.c_str(), "re");
  if (f == nullptr) {
    if (errno != ENOENT)
      log::warn("remote_write: cannot read " + path_ + ": " + std::strerror(errno) +
                "\nhint: samples the receiver already holds may be refused once after this "
                "restart; check the state directory's permissions");
    return;
  }
  char buf[4096] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  const std::string text(buf, n);
  char* end = nullptr;
  errno = 0;
  const long long ms = std::strtoll(buf, &end, 10);
  const size_t space = static_cast<size_t>(end - buf);
  const bool ok = errno == 0 && space > 0 && space < text.size() && text[space] == ' ' &&
                  text.size() > space + 2 && text.back() == '\n' &&
                  text.find_first_of(" \n\0", space + 1) == text.size() - 1;
  if (!ok) {
    log::warn("remote_write: " + path_ + " is not \"<ms> <url>\" (torn or edited?); ignored" +
              "\nhint: samples the receiver already holds may be refused once after this "
              "restart; the file is rewritten after the next accepted request");
    return;
  }
  const std::string url = text.substr(space + 1, text.size() - space - 2);
  if (url == url_) floor_ms_ = newest_ms_ = ms;
  else hint_ms_ = ms;
}

void RwHighWater::set_url(const std::string& url) {
  if (url == url_) return;
  url_ = url;
  marks_.clear();
  if (newest_ms_ != kNoMark) hint_ms_ = newest_ms_;
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

std::string RwHighWater::accept_marks(const RwMarks& marks) {
  const int64_t before = newest_ms_;
  for (const auto& [key, newest] : marks) {
    auto [it, fresh] = marks_.try_emplace(key, newest);
    if (!fresh) it->second = std::max(it->second, newest);
    newest_ms_ = std::max(newest_ms_, newest);
  }
  if (marks_.size() >= prune_at_) prune();
  if (newest_ms_ == before || path_.empty()) return {};
  return std::to_string(newest_ms_) + " " + url_ + "\n";
}

void RwHighWater::accepted(const std::vector<RwSeries>& batch) {
  write_file(accept_marks(rw_marks_of(batch)));
}

void RwHighWater::write_file(const std::string& content) const {
  if (content.empty()) return;
  Status s = write_rw_state_file(path_, content);
  if (!s)
    log::warn("remote_write: " + s.error().message + "\nhint: after a restart, samples the "
              "receiver already holds may be sent again (and refused once); check the state "
              "directory");
}

void RwHighWater::prune() {
  std::erase_if(marks_, [&](const auto& kv) { return kv.second < newest_ms_ - kPruneAgeMs; });
  prune_at_ = std::max<size_t>(4096, marks_.size() * 2);
}

}  // namespace statherd::server
