// Graphite names of rolled-up series: the paths the Graphite sink sends and the memory store
// (/render, /metrics/find) serves. Every component is sanitized (common/names.h), so no metric
// name, app, host or tag can ever inject a space, newline, ';' or '=' into the line protocol.
//   app level:     <prefix>.<app>.<metric>.<tags...>.<stat>
//   host level:    <prefix>.<app>.hosts.<host>.<metric>.<tags...>.<stat>
//   process level: <prefix>.<app>.hosts.<host>.pids.<pid>.<metric>.<tags...>.<stat>
// The metric's own dots stay path separators; each tag adds two components `.<k>.<v>` before
// the stat. The tagged form (graphite.tags: true) leaves the tags out of the dotted path and
// appends them as Graphite tags in Graphite's canonical order (the ";k=v" strings sorted; a key
// "name", Graphite's own tag, becomes "name_"): <...>.<metric>.<stat>;k=v;k2=v2.
//
// A path is built in two parts so that a sink builds the expensive part once per series: the
// series path (everything but the stat, built from the SeriesKey) and the stat's component.
// The stat goes at GraphiteSeriesPath::stat_at: the end of a plain path, before the first ';'
// of a tagged one. A stat component never holds a '.', so a full path names one (series
// path, stat) pair and nothing else.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/rollup_record.h"
#include "server/series_point.h"

namespace statherd::server {

struct GraphiteSeriesPath {
  std::string text;      // the path without its stat (tagged: with the ";k=v" suffix)
  uint32_t stat_at = 0;  // where ".<stat>" is inserted
  // The full path of one stat whose sanitized component is `component`.
  std::string with_stat(std::string_view component) const;
  // The dotted part the rules see (no ";k=v" tags): text before stat_at, '.', component.
  std::string dotted_with_stat(std::string_view component) const;
};

// `prefix` may be dotted ("statherd", "dc1.statherd") or empty (no prefix components).
GraphiteSeriesPath graphite_series_path(const SeriesKey& key, std::string_view prefix,
                                        bool tagged);
// The stat's path component ("p99.9" -> "p99_9").
std::string graphite_stat_component(std::string_view stat);

// One stat's full path, built at once (tests, benches, one-off lookups).
std::string graphite_path(const SeriesKey& key, std::string_view stat, std::string_view prefix);
std::string graphite_tagged_path(const SeriesKey& key, std::string_view stat,
                                 std::string_view prefix);
std::string graphite_path(const SeriesPoint& point, std::string_view prefix);
std::string graphite_tagged_path(const SeriesPoint& point, std::string_view prefix);

// The stat names a sink has seen, each with its component, by a small id: a per-series cache
// keeps ids, not strings. Names that sanitize to one component share its component_id.
class GraphiteStatNames {
 public:
  // `name` is a Stat's (server/rollup_record.h: it never dangles); its address is kept.
  uint32_t intern(std::string_view name);
  const std::string& name(uint32_t id) const { return names_[id]->name; }
  // Whether the Stat name `name` is id's (same_stat_name: by address first).
  bool is(uint32_t id, std::string_view name) const {
    return same_stat_name(names_[id]->spelled, name);
  }
  const std::string& component(uint32_t id) const { return names_[id]->component; }
  uint32_t component_id(uint32_t id) const { return names_[id]->component_id; }

 private:
  struct Name {
    std::string name, component;
    uint32_t component_id;
    std::string_view spelled;  // the Stat name first interned (its address)
  };
  // Each Name at one address (the references above stay valid); a vector of pointers, as a
  // std::deque's indexing divides by its block's length on every stat of every emit.
  std::vector<std::unique_ptr<Name>> names_;
  std::unordered_map<std::string, uint32_t> by_name_, by_component_;
};

}  // namespace statherd::server
