// Liveness and start times of the processes behind stat files (mmstats v1 and statherd v2
// files each belong to one process), read from <proc_root> and memoised for one scrape, so a
// pid with many files costs one stat() (and at most one read of its stat file) per scrape.
// Also the rule that makes a file's samples `fresh`. Shared by the per-process file sources.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace statherd::agent {

class ProcessTable {
 public:
  // kind names the source in the one warning logged when start times are unavailable.
  ProcessTable(std::string proc_root, std::string kind);

  // Forgets the answers of the previous scrape (a pid may have exited or been reused since),
  // and the boot time: btime in <proc_root>/stat is wall clock minus uptime, so it moves when
  // the wall clock is stepped or slewed (seen: 27 s in an hour on a VM); each scrape reads it.
  void begin_scrape();
  // <proc_root>/<pid> exists.
  bool alive(int64_t pid);
  // Start time in ms since the epoch (field 22 of <proc_root>/<pid>/stat + boot time):
  // -1 if the process is gone, 0 if unknown (no procfs, or it exited while we looked).
  int64_t start_ms(int64_t pid);
  // Start time in ms since boot (field 22 alone): does not move with the wall clock, so equal
  // values at two scrapes mean the same process. -1 if gone, 0 if unknown.
  int64_t since_boot_ms(int64_t pid);

 private:
  std::string proc_root_, kind_;
  std::unordered_map<int64_t, bool> alive_;
  std::unordered_map<int64_t, int64_t> since_boot_;
  int64_t boot_time_ms_ = -1;  // -1: not read this scrape; 0: unavailable (not read again)
};

// A file's samples are `fresh` (the server counts their counters whole on first sighting)
// when the file is new since the previous scan of this source (new_since_last_scan), or when
// its process started after fresh_if_started_after_ms (the last scan before an agent start or
// a source rebuild; 0: off; a start time of 0 is unknown and never fresh). Start times from
// /proc rest on btime, which is whole seconds, so they read up to ~1 s early: a process that
// started less than kFreshStartSlackMs before that scan still counts as started after it. A
// wrong `fresh` on a file the server already knows changes nothing (it counts every batch of a
// known source whole), whereas a missed one loses the writer's increments up to our first scan.
inline constexpr int64_t kFreshStartSlackMs = 1000;
bool file_is_fresh(bool new_since_last_scan, int64_t start_ms, int64_t fresh_if_started_after_ms);

}  // namespace statherd::agent
