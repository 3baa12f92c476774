// The start times the agent sent for per-process stat files, kept on disk across agent
// restarts (a file in the spool directory), so a file whose process died while no agent ran
// is still sent under the identity it had before.
//
// Why: a file's identity includes its process start time, which the agent reads from /proc
// while the process lives. A writer that dies between an agent's last scan and the next
// agent's first one has no /proc entry any more: sent with start time 0 it would be a NEW
// source to the server (baselined: its final increments lost). The file's mtime or birth time
// are not the /proc start time, so they cannot stand in for it. An entry is used only for the
// same path, pid and inode it was recorded with; entries of files gone are dropped.
//
// File format (written atomically, only when it changed): one line per file,
//   "<start_ms> <pid> <inode> <path>\n"
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace statherd::agent {

class StartTimeMemory {
 public:
  // file: where to keep it ("" keeps nothing). A missing or unreadable file is empty memory.
  explicit StartTimeMemory(std::string file);

  // The start time recorded for (path, pid, inode); 0 if none.
  int64_t recall(const std::string& path, int64_t pid, uint64_t inode) const;
  void remember(const std::string& path, int64_t pid, uint64_t inode, int64_t start_ms);
  // Marks path as still present this scan; save() drops entries not marked since the last save.
  void keep(const std::string& path);
  // Writes the file if an entry changed or was dropped; a failed write is logged (once per
  // run of failures) and retried at the next save.
  void save();

 private:
  struct Entry {
    int64_t pid = 0;
    uint64_t inode = 0;
    int64_t start_ms = 0;
    bool kept = false;
  };
  std::string file_;
  std::map<std::string, Entry> entries_;
  bool dirty_ = false;
  bool failing_ = false;
};

}  // namespace statherd::agent
