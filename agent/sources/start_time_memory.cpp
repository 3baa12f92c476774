// See start_time_memory.h.
#include "agent/sources/start_time_memory.h"

#include <fstream>
#include <sstream>

#include "agent/spool.h"
#include "common/log.h"

namespace statherd::agent {

StartTimeMemory::StartTimeMemory(std::string file) : file_(std::move(file)) {
  if (file_.empty()) return;
  std::ifstream in(file_);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    Entry e;
    std::string path;
    if (!(fields >> e.start_ms >> e.pid >> e.inode) || fields.get() != ' ') continue;
    std::getline(fields, path);
    if (path.empty() || e.start_ms <= 0) continue;
    e.kept = true;  // kept through the first save; dropped at the next if its file is gone
    entries_[path] = e;
  }
}

int64_t StartTimeMemory::recall(const std::string& path, int64_t pid, uint64_t inode) const {
  auto it = entries_.find(path);
  if (it == entries_.end() || it->second.pid != pid || it->second.inode != inode) return 0;
  return it->second.start_ms;
}

void StartTimeMemory::remember(const std::string& path, int64_t pid, uint64_t inode,
                               int64_t start_ms) {
  if (file_.empty() || start_ms <= 0 || path.find('\n') != std::string::npos) return;
  Entry& e = entries_[path];
  if (e.pid != pid || e.inode != inode || e.start_ms != start_ms) dirty_ = true;
  e = {pid, inode, start_ms, true};
}

void StartTimeMemory::keep(const std::string& path) {
  if (auto it = entries_.find(path); it != entries_.end()) it->second.kept = true;
}

void StartTimeMemory::save() {
  if (file_.empty()) return;
  dirty_ |= std::erase_if(entries_, [](const auto& kv) { return !kv.second.kept; }) > 0;
  for (auto& [path, e] : entries_) e.kept = false;
  if (!dirty_) return;
  std::string text;
  for (const auto& [path, e] : entries_)
    text += std::to_string(e.start_ms) + " " + std::to_string(e.pid) + " " +
            std::to_string(e.inode) + " " + path + "\n";
  const size_t slash = file_.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : file_.substr(0, slash);
  const std::string name = slash == std::string::npos ? file_ : file_.substr(slash + 1);
  if (auto st = write_file_atomically(dir, name, text); !st) {
    if (!failing_)
      log::warn("cannot save process start times to " + file_ + ": " + st.error().to_string() +
                " (hint: a writer that dies while no agent runs may then lose its last "
                "increments; free space in the spool directory)");
    failing_ = true;
    return;
  }
  failing_ = false;
  dirty_ = false;
}

}  // namespace statherd::agent
