// See process_table.h.
#include "agent/sources/process_table.h"

#include <sys/stat.h>

#include <algorithm>

#include "agent/sources/mmstats_v1.h"
#include "common/log.h"

namespace statherd::agent {

ProcessTable::ProcessTable(std::string proc_root, std::string kind)
    : proc_root_(std::move(proc_root)), kind_(std::move(kind)) {}

void ProcessTable::begin_scrape() {
  alive_.clear();
  since_boot_.clear();
  if (boot_time_ms_ > 0) boot_time_ms_ = -1;
}

bool ProcessTable::alive(int64_t pid) {
  auto [it, inserted] = alive_.try_emplace(pid, false);
  if (inserted) {
    struct stat st;
    it->second = ::stat((proc_root_ + "/" + std::to_string(pid)).c_str(), &st) == 0;
  }
  return it->second;
}

int64_t ProcessTable::since_boot_ms(int64_t pid) {
  auto [it, inserted] = since_boot_.try_emplace(pid, 0);
  if (!inserted) return it->second;
  if (!alive(pid)) return it->second = -1;
  auto start = read_process_start_ms(proc_root_, pid, 0);
  if (start) return it->second = std::max<int64_t>(*start, 1);  // 0 means unknown
  struct stat st;  // exited while we looked?
  const bool still = ::stat((proc_root_ + "/" + std::to_string(pid)).c_str(), &st) == 0;
  return it->second = still ? 0 : -1;
}

int64_t ProcessTable::start_ms(int64_t pid) {
  const int64_t since_boot = since_boot_ms(pid);
  if (since_boot <= 0) return since_boot;
  if (boot_time_ms_ < 0) {
    auto bt = read_boot_time_ms(proc_root_);
    if (!bt) log::warn(kind_ + ": process start times unknown: " + bt.error().to_string());
    boot_time_ms_ = bt ? *bt : 0;
  }
  return boot_time_ms_ == 0 ? 0 : boot_time_ms_ + since_boot;
}

bool file_is_fresh(bool new_since_last_scan, int64_t start_ms, int64_t fresh_if_started_after_ms) {
  return new_since_last_scan || (fresh_if_started_after_ms > 0 && start_ms > 0 &&
                                 start_ms > fresh_if_started_after_ms - kFreshStartSlackMs);
}

}  // namespace statherd::agent
