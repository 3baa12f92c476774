// Sanitizing is many-to-one: app "a.p.p" and app "a_p_p", or metric "req time" and
// "req_time", become one path, and Carbon would silently merge (overwrite) the two series.
// PathCollisions finds them as paths enter the Graphite sink's cache (never per interval):
// a path already sent by another live series (a cached key of another series: a new key of an
// equal series is the same series), or by the same series under another stat name, is a
// collision. Each colliding path is reported once (a warning naming
// both series, and a count); the first kMaxRemembered colliding paths are reported, later ones
// not (bounded memory). A series gives up its paths when its cache entry is dropped (its key
// went idle), so a later series taking the same path is no collision.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "server/sinks/graphite_series.h"

namespace statherd::server {

class PathCollisions {
 public:
  static constexpr size_t kMaxRemembered = 10'000;
  // `s` (cached, at a stable address until leave()) holds its series path from now on.
  void join(GraphiteSeries& s);
  void leave(GraphiteSeries& s);
  // s.slots[slot] just entered the cache: true if its path collides and was not reported
  // before (then it is logged and counted).
  bool check(const GraphiteSeries& s, size_t slot, const GraphiteStatNames& names);
  uint64_t total() const { return total_; }  // collisions reported (distinct paths)

 private:
  bool report(const GraphiteSeries& first, const GraphiteSeries& second, uint32_t first_stat,
              uint32_t second_stat, const GraphiteStatNames& names);
  // Path text -> its first holder; the others follow through GraphiteSeries::next_holder. The
  // key views the first holder's own text.
  std::unordered_map<std::string_view, GraphiteSeries*> holders_;
  std::unordered_set<std::string> reported_;
  uint64_t total_ = 0;
};

}  // namespace statherd::server
