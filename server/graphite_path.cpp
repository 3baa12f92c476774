#include "server/graphite_path.h"

#include <charconv>

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

}  // namespace statherd::server
