// Group commit for the write-ahead log: records submitted while an fsync runs are written and
// fsynced together by the next one, on a thread of its own, so the ingest thread never waits
// for the disk and one fsync acknowledges every batch that arrived meanwhile.
//
// Each record's callback runs on the committer's thread once its write and fsync are done (or
// failed: the file is cut back, every record of that group gets the error), in submission
// order. Rotation (for a snapshot) happens between groups: the rotation's callback runs after
// the callbacks of every record submitted before it, with the new file's number, so a caller
// that forwards records to one FIFO queue in its callbacks gets "all of the older files are in
// the queue" when the rotation's callback runs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "server/connection_limits.h"
#include "server/wal.h"

namespace statherd::server {

struct WalCommitterCounters {
  uint64_t records = 0;  // records made durable
  uint64_t groups = 0;   // writes (fsyncs) that did it
  uint64_t failures = 0; // groups that failed
};

class WalCommitter {
 public:
  using Done = std::function<void(const Status&)>;
  using Rotated = std::function<void(const Result<uint64_t>& next_file)>;

  // Appends to <dir>/wal-<number>.log (opened by start()).
  WalCommitter(std::string dir, uint64_t number, bool fsync);
  ~WalCommitter();
  WalCommitter(const WalCommitter&) = delete;
  WalCommitter& operator=(const WalCommitter&) = delete;

  Status start();
  // Thread-safe. `done` runs on the committer's thread.
  void submit(std::string record, Done done);
  // Thread-safe: start wal-<n+1>.log after the records submitted so far.
  void rotate(Rotated rotated);
  // Writes what is queued, runs its callbacks, stops the thread. Idempotent.
  void stop();

  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  bool ok() const { return ok_.load(std::memory_order_relaxed); }
  // The file appended to now (after stop(): the last one).
  uint64_t number() const { return number_.load(); }
  WalCommitterCounters counters() const;

 private:
  struct Entry {
    std::string record;  // empty with `rotated` set: a rotation
    Done done;
    Rotated rotated;
  };
  void run();
  void commit(std::vector<Entry>& group);

  std::string dir_;
  bool fsync_;
  WalWriter wal_;  // the committer thread's only
  RateLimitedLine failure_log_;  // the committer thread's only
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Entry> queue_;
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<uint64_t> bytes_{0}, records_{0}, groups_{0}, failures_{0};
  std::atomic<bool> ok_{true};
  std::atomic<uint64_t> number_;
};

}  // namespace statherd::server
