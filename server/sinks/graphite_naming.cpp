#include "server/sinks/graphite_naming.h"

#include <algorithm>
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

// The fields of a series, from a SeriesKey or a SeriesPoint.
struct SeriesFields {
  Level level;
  std::string_view app, host;
  int64_t pid;
  std::string_view metric;
  const Tags& tags;
};

GraphiteSeriesPath series_path(const SeriesFields& s, std::string_view prefix, bool tagged) {
  GraphiteSeriesPath out;
  std::string& path = out.text;
  path.reserve(prefix.size() + s.app.size() + s.host.size() + s.metric.size() + 40);
  if (!prefix.empty()) append_dotted(path, prefix);
  append_component(path, s.app);
  if (s.level == Level::Host || s.level == Level::Process) {
    append_component(path, "hosts");
    append_component(path, s.host);
  }
  if (s.level == Level::Process) {
    append_component(path, "pids");
    char pid[24];
    auto end = std::to_chars(pid, pid + sizeof pid, s.pid).ptr;
    append_component(path, std::string_view(pid, static_cast<size_t>(end - pid)));
  }
  append_dotted(path, s.metric);
  if (!tagged) {
    for (const auto& [key, value] : s.tags) {
      append_component(path, key);
      append_component(path, value);
    }
    out.stat_at = static_cast<uint32_t>(path.size());
    return out;
  }
  out.stat_at = static_cast<uint32_t>(path.size());
  // Graphite's canonical order (graphite-web's TaggedSeries.format, what carbon stores and its
  // tag database answers): the ";k=v" strings sorted, which is not key order when a key is a
  // prefix of another (";a-b=1" < ";a=1"). A key "name" would be replaced by the metric's name
  // (Graphite's name tag): it becomes "name_".
  std::vector<std::string> segments;
  segments.reserve(s.tags.size());
  for (const auto& [key, value] : s.tags) {
    std::string segment = ";";
    append_graphite_component(segment, key);  // sanitize_graphite_tag(): the component rules
    if (segment == ";name") segment += '_';
    segment += '=';
    append_graphite_component(segment, value);
    segments.push_back(std::move(segment));
  }
  std::sort(segments.begin(), segments.end());
  for (const std::string& segment : segments) path += segment;
  return out;
}

SeriesFields fields_of(const SeriesKey& k) {
  return {k.level, k.app, k.host, k.pid, k.metric, k.tags};
}

SeriesFields fields_of(const SeriesPoint& p) {
  return {p.level, p.app, p.host, p.pid, p.metric, p.tags};
}

}  // namespace

std::string GraphiteSeriesPath::with_stat(std::string_view component) const {
  std::string path;
  path.reserve(text.size() + 1 + component.size());
  path.append(text, 0, stat_at);
  path += '.';
  path += component;
  path.append(text, stat_at);
  return path;
}

std::string GraphiteSeriesPath::dotted_with_stat(std::string_view component) const {
  std::string path;
  path.reserve(stat_at + 1 + component.size());
  path.append(text, 0, stat_at);
  path += '.';
  path += component;
  return path;
}

GraphiteSeriesPath graphite_series_path(const SeriesKey& key, std::string_view prefix,
                                        bool tagged) {
  return series_path(fields_of(key), prefix, tagged);
}

std::string graphite_stat_component(std::string_view stat) {
  return sanitize_graphite_component(stat);
}

uint32_t GraphiteStatNames::intern(std::string_view name) {
  auto it = by_name_.find(std::string(name));
  if (it != by_name_.end()) return it->second;
  const auto id = static_cast<uint32_t>(names_.size());
  std::string component = graphite_stat_component(name);
  const auto component_id =
      by_component_.try_emplace(component, static_cast<uint32_t>(by_component_.size()))
          .first->second;
  names_.push_back(
      std::make_unique<Name>(Name{std::string(name), std::move(component), component_id, name}));
  by_name_.emplace(std::string(name), id);
  return id;
}

std::string graphite_path(const SeriesKey& key, std::string_view stat, std::string_view prefix) {
  return series_path(fields_of(key), prefix, false).with_stat(graphite_stat_component(stat));
}

std::string graphite_tagged_path(const SeriesKey& key, std::string_view stat,
                                 std::string_view prefix) {
  return series_path(fields_of(key), prefix, true).with_stat(graphite_stat_component(stat));
}

std::string graphite_path(const SeriesPoint& point, std::string_view prefix) {
  return series_path(fields_of(point), prefix, false)
      .with_stat(graphite_stat_component(point.stat));
}

std::string graphite_tagged_path(const SeriesPoint& point, std::string_view prefix) {
  return series_path(fields_of(point), prefix, true)
      .with_stat(graphite_stat_component(point.stat));
}

}  // namespace statherd::server
