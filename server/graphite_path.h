// SeriesPoint -> Graphite path. Every component is sanitized (common/names.h), so no metric
// name, app, host or tag can ever inject a space, newline, ';' or '=' into the line protocol.
//   app level:     <prefix>.<app>.<metric>.<tags...>.<stat>
//   host level:    <prefix>.<app>.hosts.<host>.<metric>.<tags...>.<stat>
//   process level: <prefix>.<app>.hosts.<host>.pids.<pid>.<metric>.<tags...>.<stat>
// The metric's own dots stay path separators; each tag adds two components `.<k>.<v>` before
// the stat (graphite_tagged_path() in graphite_rules.h spells them as Graphite ";k=v" tags).
#pragma once

#include <string>
#include <string_view>

#include "server/series_point.h"

namespace statherd::server {

// `prefix` may be dotted ("statherd", "dc1.statherd") or empty (no prefix components).
std::string graphite_path(const SeriesPoint& point, std::string_view prefix);

}  // namespace statherd::server
