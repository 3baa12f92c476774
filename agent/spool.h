// The agent's disk spool: every batch is written here before it is sent, and removed only once
// the server acknowledged it, so a dead server or a killed agent loses nothing.
//
// Layout of spool_dir (mode 0700):
//   00000000000000001024.batch   one encoded Batch (common/wire.h), named by its zero-padded
//                                seq; written to .tmp-<seq>, fsynced, renamed (mode 0600)
//   00000000000000001024.parts   the same batch split after a 413 (agent/spool_parts.h)
//   state                        "next_seq N\nlast_scrape_ms T\nstride_from S\n", replaced
//                                atomically the same way
//   quarantine/                  batches the server declared malformed (spool_quarantine.h)
// Replay order is seq order. Seqs step by kSeqStride (1024) so each batch owns a window of
// seqs for its parts if it must be split (spool_parts.h); `stride_from` is the first seq
// handed out that way (seqs below it come from an older agent, in steps of 1).
// The spool is bounded in bytes: once a new batch is safely written and the spool is over the
// bound, the OLDEST batches are dropped (counted and logged); newer data is worth more. A write
// that fails drops nothing.
// Seq hazard: if the state file is lost, seq restarts at 1024 x the wall-clock ms of that
// moment, which is above any seq used before (fewer than one batch per ms), so the server's
// dedup never eats new batches.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/spool_parts.h"
#include "agent/spool_quarantine.h"
#include "common/result.h"

namespace statherd::agent {

class Spool {
 public:
  // Creates dir (0700) if needed, removes leftover temp files, lists existing batches and loads
  // the state file. now_ms seeds seq when there is no state yet.
  static Result<std::unique_ptr<Spool>> open(std::string dir, uint64_t max_bytes, int64_t now_ms,
                                             QuarantineLimits quarantine = {});

  // Reserves the next seq and records the scrape time; persisted (atomically) before returning,
  // so a seq is never handed out twice, even across a crash.
  Result<uint64_t> begin_batch(int64_t scrape_ms);
  // The same when the state cannot be persisted (a full disk): the seq is reserved in memory
  // only. Safe across a restart all the same: open() starts at least at now_ms * kSeqStride,
  // above every seq an earlier agent handed out (one per scrape, far fewer than one per ms);
  // only a wall clock stepped back between the two runs defeats that.
  uint64_t begin_batch_unsaved(int64_t scrape_ms);

  // Stores an encoded batch durably, then drops the oldest other batches if the spool is over
  // max_bytes. A failed write drops nothing. A batch larger than max_bytes on its own is
  // refused (error, counted as dropped).
  Status put(uint64_t seq, std::string_view encoded);

  std::vector<uint64_t> pending() const;              // seq ascending
  bool has(uint64_t seq) const { return batches_.count(seq) != 0; }
  Result<std::string> read(uint64_t seq) const;       // the file as stored (.batch or .parts)
  // The parts to send for seq: one part (its whole window) for an unsplit batch.
  Result<std::vector<SpoolPart>> read_parts(uint64_t seq) const;
  // Replaces seq's file by a .parts file atomically (the split after a 413).
  Status replace_parts(uint64_t seq, const std::vector<SpoolPart>& parts);
  void remove(uint64_t seq);                           // acknowledged
  // Moves seq's file into the quarantine (when it cannot be read or decoded).
  Status quarantine_file(uint64_t seq, std::string_view reason);
  // The seq window (floor, seq] of an unsplit batch (see spool_parts.h).
  uint64_t window_floor(uint64_t seq) const;
  SpoolQuarantine& quarantine() { return quarantine_; }
  const SpoolQuarantine& quarantine() const { return quarantine_; }

  uint64_t next_seq() const { return next_seq_; }
  uint64_t stride_from() const { return stride_from_; }
  // A server's spool in a cluster (agent/cluster_delivery.h) holds the agent's own seqs, never
  // handing out one: those from `seq` on are windows of kSeqStride, as in the agent's spool.
  void use_stride_from(uint64_t seq) { stride_from_ = seq; }
  int64_t last_scrape_ms() const { return last_scrape_ms_; }  // 0: never
  uint64_t bytes() const { return bytes_; }
  size_t count() const { return batches_.size(); }
  uint64_t dropped_batches() const { return dropped_; }
  const std::string& dir() const { return dir_; }

  std::string path_of(uint64_t seq) const;  // the file holding seq (.batch or .parts)

 private:
  struct Entry {
    uint64_t size = 0;
    bool split = false;  // stored as .parts
  };
  Spool(std::string dir, uint64_t max_bytes, SpoolQuarantine quarantine)
      : dir_(std::move(dir)), max_bytes_(max_bytes), quarantine_(std::move(quarantine)) {}
  Status scan();
  Status load_state(int64_t now_ms);
  Status save_state();
  void drop_oldest_except(uint64_t keep);
  std::string file_of(uint64_t seq, bool split) const;

  std::string dir_;
  uint64_t max_bytes_;
  SpoolQuarantine quarantine_;
  std::map<uint64_t, Entry> batches_;
  uint64_t bytes_ = 0;
  uint64_t dropped_ = 0;
  uint64_t next_seq_ = kSeqStride;
  uint64_t stride_from_ = kSeqStride;
  int64_t last_scrape_ms_ = 0;
};

// Writes `data` to `path` atomically: path.tmp (mode 0600) + fsync + rename + fsync(dir).
Status write_file_atomically(const std::string& dir, const std::string& name,
                             std::string_view data);

}  // namespace statherd::agent
