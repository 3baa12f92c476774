// The agent's disk spool: every batch is written here before it is sent, and removed only once
// the server acknowledged it, so a dead server or a killed agent loses nothing.
//
// Layout of spool_dir (mode 0700):
//   00000000000000000042.batch   one encoded Batch (common/wire.h), named by its zero-padded
//                                seq; written to .tmp-<seq>, fsynced, renamed (mode 0600)
//   state                        "next_seq N\nlast_scrape_ms T\n", replaced atomically the same way
// Replay order is seq order. The spool is bounded in bytes: when a new batch would exceed the
// bound, the OLDEST batches are dropped (counted and logged); newer data is worth more.
// Seq hazard: if the state file is lost, seq restarts at the wall-clock ms of that moment, which
// is above any seq used before (one per interval), so the server's dedup never eats new batches.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace statherd::agent {

class Spool {
 public:
  // Creates dir (0700) if needed, removes leftover temp files, lists existing batches and loads
  // the state file. now_ms seeds seq when there is no state yet.
  static Result<std::unique_ptr<Spool>> open(std::string dir, uint64_t max_bytes, int64_t now_ms);

  // Reserves the next seq and records the scrape time; persisted (atomically) before returning,
  // so a seq is never handed out twice, even across a crash.
  Result<uint64_t> begin_batch(int64_t scrape_ms);

  // Stores an encoded batch durably; drops the oldest batches first if needed to stay within
  // max_bytes. A batch larger than max_bytes on its own is refused (error).
  Status put(uint64_t seq, std::string_view encoded);

  std::vector<uint64_t> pending() const;              // seq ascending
  Result<std::string> read(uint64_t seq) const;
  void remove(uint64_t seq);                           // acked or permanently rejected

  uint64_t next_seq() const { return next_seq_; }
  int64_t last_scrape_ms() const { return last_scrape_ms_; }  // 0: never
  uint64_t bytes() const { return bytes_; }
  size_t count() const { return batches_.size(); }
  uint64_t dropped_batches() const { return dropped_; }
  const std::string& dir() const { return dir_; }

  std::string path_of(uint64_t seq) const;

 private:
  Spool(std::string dir, uint64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  Status scan();
  Status load_state(int64_t now_ms);
  Status save_state();
  void drop_oldest();

  std::string dir_;
  uint64_t max_bytes_;
  std::map<uint64_t, uint64_t> batches_;  // seq -> file size
  uint64_t bytes_ = 0;
  uint64_t dropped_ = 0;
  uint64_t next_seq_ = 1;
  int64_t last_scrape_ms_ = 0;
};

// Writes `data` to `path` atomically: path.tmp (mode 0600) + fsync + rename + fsync(dir).
Status write_file_atomically(const std::string& dir, const std::string& name,
                             std::string_view data);

}  // namespace statherd::agent
