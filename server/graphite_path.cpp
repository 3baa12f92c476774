#include "server/graphite_path.h"

#include <charconv>

#include "common/log.h"
#include "common/names.h"

namespace statherd::server {

namespace {

void append_component(std::string& path, std::string_view raw) {
  if (!path.empty()) path += '.';
  append_graphite_component(path, raw);
}

void append_dotted(std::string& path, std::string_view dotted) {
  if (!path.empty()) path += '.';
  append_graphite_path(path, dotted);
}

}  // namespace

std::string graphite_path(const SeriesPoint& point, std::string_view prefix) {
  std::string path;
  path.reserve(prefix.size() + point.app.size() + point.host.size() + point.metric.size() + 48);
  if (!prefix.empty()) append_dotted(path, prefix);
  append_component(path, point.app);
  if (point.level == Level::Host || point.level == Level::Process) {
    append_component(path, "hosts");
    append_component(path, point.host);
  }
  if (point.level == Level::Process) {
    append_component(path, "pids");
    char pid[24];
    auto end = std::to_chars(pid, pid + sizeof pid, point.pid).ptr;
    append_component(path, std::string_view(pid, static_cast<size_t>(end - pid)));
  }
  append_dotted(path, point.metric);
  for (const auto& [key, value] : point.tags) {
    append_component(path, key);
    append_component(path, value);
  }
  append_component(path, point.stat);
  return path;
}

namespace {

bool same_series(const SeriesPoint& a, const SeriesPoint& b) {
  return a.level == b.level && a.app == b.app && a.host == b.host && a.pid == b.pid &&
         a.metric == b.metric && a.tags == b.tags && a.stat == b.stat;
}

std::string describe_series(const SeriesPoint& p) {
  std::string out = "app '" + p.app + "'";
  if (p.level != Level::App) out += " host '" + p.host + "'";
  if (p.level == Level::Process) out += " pid " + std::to_string(p.pid);
  out += " metric '" + p.metric + "'";
  for (const auto& [k, v] : p.tags) out += " tag '" + k + "'='" + v + "'";
  return out;
}

}  // namespace

void PathCollisions::begin(size_t points) {
  seen_.clear();
  seen_.reserve(points);
}

bool PathCollisions::add(std::string_view path, const SeriesPoint& point) {
  auto [it, inserted] = seen_.emplace(path, &point);
  if (inserted || same_series(*it->second, point)) return false;
  if (reported_.size() >= kMaxRemembered || !reported_.emplace(path).second) return false;
  ++total_;
  log::warn("graphite: two series sanitize to one path " + std::string(path) + ": " +
            describe_series(*it->second) + " and " + describe_series(point) +
            "; Carbon merges them\nhint: rename one of them (only A-Z a-z 0-9 _ - survive in a "
            "path component, everything else becomes _)");
  return true;
}

}  // namespace statherd::server
