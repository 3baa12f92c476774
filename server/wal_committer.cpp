#include "server/wal_committer.h"

#include "common/log.h"
#include "common/thread_name.h"

namespace statherd::server {

WalCommitter::WalCommitter(std::string dir, uint64_t number, bool fsync)
    : dir_(std::move(dir)), fsync_(fsync), number_(number) {}

WalCommitter::~WalCommitter() { stop(); }

Status WalCommitter::start() {
  Status opened = wal_.open(dir_, number_, fsync_);
  if (!opened) return opened;
  bytes_ = wal_.bytes();
  thread_ = std::thread([this] {
    name_this_thread("wal-commit");
    run();
  });
  return Ok{};
}

void WalCommitter::submit(std::string record, Done done) {
  {
    std::lock_guard<std::mutex> g(mu_);
    queue_.push_back(Entry{std::move(record), std::move(done), {}});
  }
  wake_.notify_one();
}

void WalCommitter::rotate(Rotated rotated) {
  {
    std::lock_guard<std::mutex> g(mu_);
    queue_.push_back(Entry{{}, {}, std::move(rotated)});
  }
  wake_.notify_one();
}

void WalCommitter::stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

WalCommitterCounters WalCommitter::counters() const {
  return {records_.load(), groups_.load(), failures_.load()};
}

// Takes everything queued up to the next rotation as one group: one write, one fsync.
void WalCommitter::run() {
  std::vector<Entry> group;
  for (;;) {
    {
      std::unique_lock<std::mutex> g(mu_);
      wake_.wait(g, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything is written
      if (queue_.front().rotated) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      } else {
        while (!queue_.empty() && !queue_.front().rotated) {
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
    }
    commit(group);
    group.clear();
  }
}

void WalCommitter::commit(std::vector<Entry>& group) {
  if (group.size() == 1 && group.front().rotated) {
    Status opened = wal_.open(dir_, number_ + 1, fsync_);
    if (opened) {
      ++number_;
      bytes_ = wal_.bytes();
      group.front().rotated(number_.load());
    } else {
      if (auto line = failure_log_.take("write-ahead log rotation failed: " +
                                            opened.error().to_string(),
                                        std::chrono::steady_clock::now()))
        log::warn(*line);
      group.front().rotated(opened.error());
      // Keep appending to the old file if the new one could not be opened.
      if (!wal_.is_open()) (void)wal_.open(dir_, number_, fsync_);
    }
    return;
  }
  std::string joined;  // a group of one (the common case at low load) is written as it is
  if (group.size() > 1) {
    size_t total = 0;
    for (const Entry& e : group) total += e.record.size();
    joined.reserve(total);
    for (const Entry& e : group) joined += e.record;
  }
  Status written = wal_.append_framed(group.size() > 1 ? joined : group.front().record);
  ok_ = static_cast<bool>(written);
  if (written) {
    bytes_ = wal_.bytes();
    records_ += group.size();
    ++groups_;
  } else {
    ++failures_;
    if (auto line = failure_log_.take(written.error().to_string(), std::chrono::steady_clock::now()))
      log::error(*line);  // one line per 10 s, not one per retried batch
    if (!wal_.is_open()) (void)wal_.open(dir_, number_, fsync_);  // try again next group
  }
  for (Entry& e : group) e.done(written);
}

}  // namespace statherd::server
