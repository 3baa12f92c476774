// The remote_write sink's high-water marks: per series, the newest timestamp the receiver
// accepted. Prometheus refuses a sample at or before a series' newest one ("out of order
// sample", or "duplicate sample for timestamp" when the value differs) and then rolls back the
// whole request, so a sample at or before its series' mark is never sent; the totals it carried
// reach the receiver with the series' next sample (they are running totals).
//
// Durability: the per-series marks live in memory; the newest accepted timestamp over all
// series (the "floor") is kept in <state_dir>/remote_write.hwm ("<ms> <url>\n", rewritten in
// place after each accepted request; no fsync: it must survive a process crash, not a power
// cut). After a restart, every sample at or before the floor is skipped: that covers what the
// engine re-emits from its write-ahead log after a SIGKILL (intervals already delivered). A
// series whose sample at exactly the floor was not delivered before the crash loses that one
// sample, never an increment. The floor belongs to the URL it was written for: another URL
// starts without one.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/sinks/remote_write_proto.h"

namespace statherd::server {

class RwHighWater {
 public:
  // path empty: nothing persisted (tests, no state dir).
  RwHighWater(std::string path, std::string url);
  ~RwHighWater();
  RwHighWater(const RwHighWater&) = delete;
  RwHighWater& operator=(const RwHighWater&) = delete;

  // Removes every sample at or before its series' mark (or the restart floor); series left
  // without samples are removed. Returns the number of samples removed.
  uint64_t filter(std::vector<RwSeries>& batch) const;
  // The receiver accepted `batch`: raise the marks, persist the newest timestamp.
  void accepted(const std::vector<RwSeries>& batch);
  // A new receiver URL: its own floor (none unless the file was written for it).
  void set_url(const std::string& url);

  int64_t floor_ms() const { return floor_ms_; }
  size_t series() const { return marks_.size(); }

 private:
  void load();
  void persist();
  void prune();

  std::string path_, url_;
  int fd_ = -1;
  int64_t floor_ms_;    // loaded at start: skip everything at or before it
  int64_t newest_ms_;   // newest accepted, this run or the loaded floor
  size_t prune_at_ = 4096;
  std::unordered_map<std::string, int64_t> marks_;  // labels key -> newest accepted ms
};

// A series' identity in the marks: its (sorted) labels.
std::string rw_series_key(const std::vector<RwLabel>& labels);

}  // namespace statherd::server
