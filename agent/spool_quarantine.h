// The spool's quarantine: batches the server positively declared malformed (HTTP 400 with its
// decoder's verdict, see docs/API.md), single samples too large for the server even alone, and
// spool files that could not be read. They leave the delivery queue but are never deleted
// silently: each is kept in <spool_dir>/quarantine/ (mode 0700) as
//   00000000000000001024.batch   the encoded batch exactly as it was sent (mode 0600)
//   00000000000000001024.why     one line: why it was quarantined (the server's answer)
// The folder is bounded in batches and bytes; beyond the bound the OLDEST quarantined batch is
// removed, counted (dropped()) and logged. Counted in the agent's self-metrics
// (agent.spool.quarantined_batches, agent.spool.quarantine.*) and shown by --status.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/result.h"

namespace statherd::agent {

struct QuarantineLimits {
  uint64_t max_batches = 256;
  uint64_t max_bytes = 64ull << 20;
};

class SpoolQuarantine {
 public:
  // Creates <spool_dir>/quarantine (0700) if needed and counts what an earlier run left there.
  static Result<SpoolQuarantine> open(const std::string& spool_dir, QuarantineLimits limits);

  // Stores `body` (the batch with this seq) and the reason durably, then enforces the bound.
  Status add(uint64_t seq, std::string_view body, std::string_view reason);
  // Moves an existing file (an unreadable spool file) in by rename, then enforces the bound.
  Status adopt(const std::string& path, uint64_t seq, std::string_view reason);

  uint64_t count() const { return files_.size(); }
  uint64_t bytes() const { return bytes_; }
  uint64_t added() const { return added_; }      // quarantined by this process
  uint64_t dropped() const { return dropped_; }  // removed beyond the bound by this process
  const std::string& dir() const { return dir_; }
  std::string path_of(uint64_t seq) const;

 private:
  SpoolQuarantine(std::string dir, QuarantineLimits limits)
      : dir_(std::move(dir)), limits_(limits) {}
  void record(uint64_t seq, uint64_t size, std::string_view reason);
  void enforce_bound();

  std::string dir_;
  QuarantineLimits limits_;
  std::map<uint64_t, uint64_t> files_;  // seq -> size
  uint64_t bytes_ = 0, added_ = 0, dropped_ = 0;
};

}  // namespace statherd::agent
