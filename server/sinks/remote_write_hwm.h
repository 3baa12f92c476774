// The remote_write sink's high-water marks: per series, the newest timestamp the receiver
// accepted. Prometheus refuses a sample at or before a series' newest one ("out of order
// sample", or "duplicate sample for timestamp" when the value differs) and then rolls back the
// whole request, so a sample at or before its series' mark is never sent; the totals it carried
// reach the receiver with the series' next sample (they are running totals).
//
// Durability: the per-series marks live in memory; the newest accepted timestamp over all
// series (the "floor") is kept in <state_dir>/remote_write.hwm ("<ms> <url>\n", 0600, written
// tmp + fsync + rename after each accepted request). After a restart, every sample at or before
// the floor is skipped: that covers what the engine re-emits from its write-ahead log after a
// SIGKILL (intervals already delivered). The request in flight at a crash is covered by the
// outbox (remote_write_outbox.h). The floor belongs to the URL it was written for: another URL
// starts without one, and keeps the old floor only as a hint (hint_ms()) that the sink uses once
// the new receiver refuses samples (the same Prometheus under another name). A file that does
// not parse is logged and ignored (no floor).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "server/sinks/remote_write_proto.h"

namespace statherd::server {

// Per series (rw_series_key), the newest timestamp of a request.
using RwMarks = std::vector<std::pair<std::string, int64_t>>;
RwMarks rw_marks_of(const std::vector<RwSeries>& batch);

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
  // The receiver accepted (or holds) a request with these marks: raise them. Returns the file
  // content to persist (write_file()) when the floor moved, else empty; callers write it
  // outside their lock.
  std::string accept_marks(const RwMarks& marks);
  void accepted(const std::vector<RwSeries>& batch);  // accept_marks() + write_file()
  void write_file(const std::string& content) const;
  // A new receiver URL: its own floor (none unless the file was written for it).
  void set_url(const std::string& url);

  int64_t floor_ms() const { return floor_ms_; }
  // The newest timestamp sent to the previous URL (or written in the file for another URL);
  // INT64_MIN if none. Not a filter: a hint for where a refusing new receiver may stand.
  int64_t hint_ms() const { return hint_ms_; }
  size_t series() const { return marks_.size(); }

 private:
  void load();
  void prune();

  std::string path_, url_;
  int64_t floor_ms_;    // loaded at start: skip everything at or before it
  int64_t newest_ms_;   // newest accepted, this run or the loaded floor
  int64_t hint_ms_;     // see hint_ms()
  size_t prune_at_ = 4096;
  std::unordered_map<std::string, int64_t> marks_;  // labels key -> newest accepted ms
};

// A series' identity in the marks: its (sorted) labels.
std::string rw_series_key(const std::vector<RwLabel>& labels);

}  // namespace statherd::server
