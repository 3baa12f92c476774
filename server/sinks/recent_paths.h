// The Graphite paths the paced sender has sent lately (max_new_series_per_minute): a path in it
// goes out at once, any other takes a token from the new-series budget. Two generations, the
// older dropped at each rotation (every `period`): a path is remembered from period to twice
// the period after it was last sent, and the memory holds only the paths of the last two
// periods, not every path ever sent (a fleet whose pids or hosts churn grew it without end).
// A forgotten path that comes back counts as new once more: Carbon made its file long ago, so
// it only spends a token.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "common/string_hash.h"

namespace statherd::server {

class RecentPaths {
 public:
  using Clock = std::chrono::steady_clock;

  RecentPaths(Clock::duration period, Clock::time_point now) : period_(period), rotated_(now) {}

  // True when `path` was sent in the last one to two periods; it is then remembered anew.
  bool seen(std::string_view path, Clock::time_point now) {
    rotate(now);
    if (current_.find(path) != current_.end()) return true;
    auto it = previous_.find(path);
    if (it == previous_.end()) return false;
    current_.insert(previous_.extract(it));
    return true;
  }
  void add(std::string_view path, Clock::time_point now) {
    rotate(now);
    current_.emplace(path);
  }
  size_t size() const { return current_.size() + previous_.size(); }

 private:
  using Set = std::unordered_set<std::string, StringHash, std::equal_to<>>;

  void rotate(Clock::time_point now) {
    if (now - rotated_ < period_) return;
    if (now - rotated_ >= 2 * period_) previous_.clear();  // both generations are stale
    else previous_ = std::move(current_);
    current_ = Set{};
    rotated_ = now;
  }

  Clock::duration period_;
  Clock::time_point rotated_;
  Set current_, previous_;
};

}  // namespace statherd::server
