#include "server/memory_store.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "common/names.h"
#include "server/graphite_path.h"

namespace statherd::server {

namespace {

int64_t floor_to(int64_t t, int64_t step) {
  int64_t q = t / step;
  if (t % step != 0 && t < 0) --q;
  return q * step;
}

size_t slot_index(int64_t ts, int64_t step, size_t slots) {
  int64_t n = static_cast<int64_t>(slots);
  int64_t index = (floor_to(ts, step) / step) % n;
  return static_cast<size_t>(index < 0 ? index + n : index);
}

bool has_glob(std::string_view component) {
  return component.find_first_of("*?[{") != std::string_view::npos;
}

// The leading components of a pattern that contain no glob characters, joined with '.'.
std::string literal_prefix(const std::vector<std::string_view>& parts) {
  std::string out;
  for (std::string_view part : parts) {
    if (has_glob(part)) break;
    if (!out.empty()) out += '.';
    out += part;
  }
  return out;
}

// Seconds per unit, for Graphite's relative times; 0 if unknown.
int64_t unit_seconds(std::string_view unit) {
  auto is = [&](std::initializer_list<std::string_view> names) {
    return std::find(names.begin(), names.end(), unit) != names.end();
  };
  if (is({"s", "sec", "secs", "second", "seconds"})) return 1;
  if (is({"min", "mins", "minute", "minutes"})) return 60;
  if (is({"h", "hour", "hours"})) return 3600;
  if (is({"d", "day", "days"})) return 86400;
  if (is({"w", "week", "weeks"})) return 7 * 86400;
  if (is({"mon", "month", "months"})) return 30 * 86400;
  if (is({"y", "year", "years"})) return 365 * 86400;
  return 0;
}

}  // namespace

Result<int64_t> parse_graphite_time(std::string_view text, int64_t now_s) {
  const std::string hint = "use now, a relative time like -10min, -1h, -30s, -2d, or unix seconds";
  if (text.empty() || text == "now") return now_s;
  bool relative = text.front() == '-' || text.front() == '+';
  std::string_view digits = relative ? text.substr(1) : text;
  int64_t amount = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), amount);
  if (ec != std::errc() || end == digits.data() || amount < 0 || amount > (int64_t{1} << 40)) {
    return make_error("bad time '" + std::string(text) + "'", hint);
  }
  std::string_view unit(end, static_cast<size_t>(digits.data() + digits.size() - end));
  if (!relative) {
    if (!unit.empty()) return make_error("bad time '" + std::string(text) + "'", hint);
    return amount;
  }
  int64_t per = unit.empty() ? 1 : unit_seconds(unit);
  if (per == 0) return make_error("bad time unit in '" + std::string(text) + "'", hint);
  int64_t delta = amount * per;
  return text.front() == '-' ? now_s - delta : now_s + delta;
}

MemoryStore::MemoryStore(MemoryStoreOptions options) : options_(std::move(options)) {}

void MemoryStore::emit(const IntervalOutput& out) {
  int64_t interval_s = std::max<int64_t>(1, out.interval_s);
  for (const SeriesPoint& point : out.points) {
    if (!std::isfinite(point.value)) continue;
    store(graphite_path(point, options_.prefix), out.start_s, interval_s, point.value);
  }
  expire(out.start_s);
}

void MemoryStore::store(const std::string& path, int64_t ts, int64_t interval_s, double value) {
  auto it = series_.find(path);
  if (it == series_.end()) {
    if (series_.size() >= options_.max_paths) {
      ++refused_paths_;
      return;
    }
    Ring ring;
    ring.interval_s = interval_s;
    int64_t slots = std::max<int64_t>(1, options_.retention.count() / interval_s);
    ring.slots.resize(static_cast<size_t>(slots));
    it = series_.emplace(path, std::move(ring)).first;
  }
  Ring& ring = it->second;
  // A re-emission of the same interval lands in the same slot and overwrites it.
  Slot& slot = ring.slots[slot_index(ts, ring.interval_s, ring.slots.size())];
  if (slot.ts != INT64_MIN && slot.ts > ts) return;  // older than what the slot holds: expired
  slot.ts = ts;
  slot.value = value;
  ring.newest_ts = std::max(ring.newest_ts, ts);
}

void MemoryStore::expire(int64_t newest_ts) {
  // Once per retention/60 at most: a full scan is O(paths).
  int64_t every = std::max<int64_t>(1, options_.retention.count() / 60);
  if (last_expire_ts_ != INT64_MIN && newest_ts - last_expire_ts_ < every) return;
  last_expire_ts_ = newest_ts;
  int64_t cutoff = newest_ts - options_.retention.count();
  std::erase_if(series_, [&](const auto& entry) { return entry.second.newest_ts < cutoff; });
}

template <class Fn>
void MemoryStore::for_each_match(std::string_view pattern, Fn&& fn) const {
  std::vector<std::string_view> parts = split_dots(pattern);
  std::string literal = literal_prefix(parts);
  auto it = literal.empty() ? series_.begin() : series_.lower_bound(literal);
  for (; it != series_.end(); ++it) {
    const std::string& path = it->first;
    if (!literal.empty() && path.compare(0, literal.size(), literal) != 0) break;
    fn(path, parts, it->second);
  }
}

nlohmann::json MemoryStore::find(std::string_view query) const {
  nlohmann::json result = nlohmann::json::array();
  std::set<std::string> seen;
  if (query.empty()) return result;
  for_each_match(query, [&](const std::string& path, const std::vector<std::string_view>& parts,
                            const Ring&) {
    std::vector<std::string_view> comps = split_dots(path);
    if (comps.size() < parts.size()) return;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!graphite_component_match(parts[i], comps[i])) return;
    }
    bool leaf = comps.size() == parts.size();
    size_t id_len = static_cast<size_t>(comps[parts.size() - 1].data() - path.data()) +
                    comps[parts.size() - 1].size();
    std::string id = path.substr(0, id_len);
    if (!seen.insert(id + (leaf ? "\x01" : "\x02")).second) return;
    result.push_back({{"text", std::string(comps[parts.size() - 1])},
                      {"id", id},
                      {"leaf", leaf ? 1 : 0},
                      {"expandable", leaf ? 0 : 1},
                      {"allowChildren", leaf ? 0 : 1}});
  });
  return result;
}

nlohmann::json MemoryStore::datapoints(const Ring& ring, int64_t from_s, int64_t until_s) const {
  nlohmann::json points = nlohmann::json::array();
  int64_t step = ring.interval_s;
  // Whisper's alignment: the first point is the first interval start after `from`, the last
  // the interval start at or before `until`. Nothing older than retention exists here.
  from_s = std::max(from_s, until_s - static_cast<int64_t>(options_.retention.count()));
  for (int64_t ts = floor_to(from_s, step) + step; ts <= floor_to(until_s, step); ts += step) {
    const Slot& slot = ring.slots[slot_index(ts, step, ring.slots.size())];
    if (slot.ts == ts) {
      points.push_back({slot.value, ts});
    } else {
      points.push_back({nullptr, ts});
    }
  }
  return points;
}

nlohmann::json MemoryStore::render(const std::vector<std::string>& targets, int64_t from_s,
                                   int64_t until_s) const {
  nlohmann::json result = nlohmann::json::array();
  std::set<std::string> seen;
  for (const std::string& target : targets) {
    for_each_match(target, [&](const std::string& path, const std::vector<std::string_view>&,
                               const Ring& ring) {
      if (!graphite_path_match(target, path) || !seen.insert(path).second) return;
      result.push_back({{"target", path}, {"datapoints", datapoints(ring, from_s, until_s)}});
    });
  }
  return result;
}

}  // namespace statherd::server
