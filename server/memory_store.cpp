#include "server/memory_store.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
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

// Days since 1970-01-01 of a proleptic Gregorian date (month 1..12, day 1..31).
int64_t days_from_civil(int64_t year, int64_t month, int64_t day) {
  year -= month <= 2 ? 1 : 0;
  int64_t era = (year >= 0 ? year : year - 399) / 400;
  int64_t year_of_era = year - era * 400;
  int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int64_t digits_value(std::string_view s) {
  int64_t v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// "YYYYMMDD" -> unix seconds of its midnight UTC; nullopt if not a valid date.
std::optional<int64_t> parse_yyyymmdd(std::string_view s) {
  if (s.size() != 8 || !all_digits(s)) return std::nullopt;
  int64_t year = digits_value(s.substr(0, 4)), month = digits_value(s.substr(4, 2));
  int64_t day = digits_value(s.substr(6, 2));
  if (year < 1900 || month < 1 || month > 12 || day < 1) return std::nullopt;
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > kDays[month - 1] || (month == 2 && day == 29 && !leap)) return std::nullopt;
  return days_from_civil(year, month, day) * 86400;
}

// "HH:MM_YYYYMMDD" -> unix seconds (UTC); nullopt if not that form.
std::optional<int64_t> parse_hhmm_yyyymmdd(std::string_view s) {
  if (s.size() != 14 || s[2] != ':' || s[5] != '_') return std::nullopt;
  std::string_view hh = s.substr(0, 2), mm = s.substr(3, 2);
  if (!all_digits(hh) || !all_digits(mm)) return std::nullopt;
  auto midnight = parse_yyyymmdd(s.substr(6));
  if (!midnight || digits_value(hh) > 23 || digits_value(mm) > 59) return std::nullopt;
  return *midnight + digits_value(hh) * 3600 + digits_value(mm) * 60;
}

}  // namespace

Result<int64_t> parse_graphite_time(std::string_view text, int64_t now_s) {
  const std::string hint =
      "use now, a relative time like -10min, -1h, -30s, -2d, unix seconds, HH:MM_YYYYMMDD or "
      "YYYYMMDD";
  if (text.empty() || text == "now") return now_s;
  if (auto t = parse_hhmm_yyyymmdd(text)) return *t;
  if (auto t = parse_yyyymmdd(text)) return *t;
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

const MemoryStore::Slot* MemoryStore::Ring::find(int64_t ts) const {
  size_t i = slot_index(ts - base_ts, interval_s, capacity);
  return i < slots.size() ? &slots[i] : nullptr;
}

MemoryStore::Slot& MemoryStore::Ring::at(int64_t ts) {
  size_t i = slot_index(ts - base_ts, interval_s, capacity);
  if (i >= slots.size()) slots.resize(i + 1);
  return slots[i];
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
    ring.capacity = static_cast<size_t>(std::max<int64_t>(1, options_.retention.count() / interval_s));
    ring.base_ts = floor_to(ts, interval_s);
    it = series_.emplace(path, std::move(ring)).first;
  }
  Ring& ring = it->second;
  // A re-emission of the same interval lands in the same slot and overwrites it.
  Slot& slot = ring.at(ts);
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
    const Slot* slot = ring.find(ts);
    if (slot && slot->ts == ts) {
      points.push_back({slot->value, ts});
    } else {
      points.push_back({nullptr, ts});
    }
  }
  return points;
}

nlohmann::json consolidate_datapoints(const nlohmann::json& points, size_t max_points) {
  if (max_points == 0 || points.size() <= max_points) return points;
  size_t per_point = (points.size() + max_points - 1) / max_points;
  nlohmann::json out = nlohmann::json::array();
  for (size_t start = 0; start < points.size(); start += per_point) {
    double sum = 0;
    size_t count = 0;
    for (size_t i = start; i < std::min(points.size(), start + per_point); ++i) {
      if (points[i][0].is_null()) continue;
      sum += points[i][0].get<double>();
      ++count;
    }
    nlohmann::json value = count == 0 ? nlohmann::json(nullptr)
                                      : nlohmann::json(sum / static_cast<double>(count));
    out.push_back({value, points[start][1]});
  }
  return out;
}

nlohmann::json MemoryStore::render(const std::vector<std::string>& targets, int64_t from_s,
                                   int64_t until_s, size_t max_data_points) const {
  nlohmann::json result = nlohmann::json::array();
  std::set<std::string> seen;
  for (const std::string& target : targets) {
    for_each_match(target, [&](const std::string& path, const std::vector<std::string_view>&,
                               const Ring& ring) {
      if (!graphite_path_match(target, path) || !seen.insert(path).second) return;
      result.push_back({{"target", path},
                        {"datapoints", consolidate_datapoints(datapoints(ring, from_s, until_s),
                                                              max_data_points)}});
    });
  }
  return result;
}

}  // namespace statherd::server
