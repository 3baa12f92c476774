// SeriesPoint -> Graphite path. Every component is sanitized (common/names.h), so no metric
// name, app, host or tag can ever inject a space, newline, ';' or '=' into the line protocol.
//   app level:     <prefix>.<app>.<metric>.<tags...>.<stat>
//   host level:    <prefix>.<app>.hosts.<host>.<metric>.<tags...>.<stat>
//   process level: <prefix>.<app>.hosts.<host>.pids.<pid>.<metric>.<tags...>.<stat>
// The metric's own dots stay path separators; each tag adds two components `.<k>.<v>` before
// the stat (graphite_tagged_path() in graphite_rules.h spells them as Graphite ";k=v" tags).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "server/series_point.h"

namespace statherd::server {

// `prefix` may be dotted ("statherd", "dc1.statherd") or empty (no prefix components).
std::string graphite_path(const SeriesPoint& point, std::string_view prefix);

// Sanitizing is many-to-one: app "a.p.p" and app "a_p_p", or metric "req time" and "req_time",
// become one path, and Carbon would silently merge (overwrite) the two series. This finds them:
// within one interval's output, two points of distinct series (any of level, app, host, pid,
// metric, tags, stat differs) with the same path are a collision. Each colliding path is
// reported once (a warning naming both series, and a count); the first kMaxRemembered colliding
// paths are reported, later ones not (bounded memory).
class PathCollisions {
 public:
  static constexpr size_t kMaxRemembered = 10'000;
  // Starts one interval's check; the paths given to add() must stay valid until the next begin().
  void begin(size_t points);
  // Returns true if this adds a collision not reported before (and logs it).
  bool add(std::string_view path, const SeriesPoint& point);
  uint64_t total() const { return total_; }  // collisions reported (distinct paths)

 private:
  std::unordered_map<std::string_view, const SeriesPoint*> seen_;
  std::unordered_set<std::string> reported_;
  uint64_t total_ = 0;
};

}  // namespace statherd::server
