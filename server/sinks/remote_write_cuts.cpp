#include "server/sinks/remote_write_cuts.h"

#include <algorithm>
#include <limits>

namespace statherd::server {

std::vector<int64_t> rw_stale_cuts(const std::vector<RwSeries>& batch, int64_t epoch_ms,
                                   int64_t hint_ms) {
  std::vector<int64_t> before;  // distinct timestamps before the epoch
  for (const RwSeries& s : batch)
    for (const RwSample& x : s.samples)
      if (x.timestamp_ms < epoch_ms) before.push_back(x.timestamp_ms);
  std::sort(before.begin(), before.end());
  before.erase(std::unique(before.begin(), before.end()), before.end());
  std::vector<int64_t> cuts;
  if (before.empty()) return cuts;
  if (hint_ms != std::numeric_limits<int64_t>::min() && hint_ms >= before.front()) {
    auto at = std::upper_bound(before.begin(), before.end(), hint_ms);
    cuts.push_back(*std::prev(at));  // the newest timestamp at or before the hint
  }
  for (size_t n = 1;; n *= 2) {  // drop the oldest 1, 2, 4, ... timestamps, at last all
    const int64_t cut = before[std::min(n, before.size()) - 1];
    if (cuts.empty() || cut > cuts.back()) cuts.push_back(cut);
    if (n >= before.size()) break;
  }
  return cuts;
}

uint64_t rw_drop_at_or_before(std::vector<RwSeries>& batch, int64_t cut_ms) {
  uint64_t removed = 0;
  for (RwSeries& s : batch)
    removed +=
        std::erase_if(s.samples, [&](const RwSample& x) { return x.timestamp_ms <= cut_ms; });
  std::erase_if(batch, [](const RwSeries& s) { return s.samples.empty(); });
  return removed;
}

}  // namespace statherd::server
