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
  // amount <= 2^40 and per <= one year, so the product can pass INT64_MAX: checked, as is
  // now -/+ delta. Out of range is a 400, never an overflow.
  int64_t delta = 0, t = 0;
  if (__builtin_mul_overflow(amount, per, &delta) ||
      (text.front() == '-' ? __builtin_sub_overflow(now_s, delta, &t)
                           : __builtin_add_overflow(now_s, delta, &t))) {
    return make_error("time '" + std::string(text) + "' is out of range", hint);
  }
  return t;
}

MemoryStore::MemoryStore(MemoryStoreOptions options) : options_(std::move(options)) {}

void MemoryStore::emit(const IntervalOutput& out) {
  int64_t interval_s = std::max<int64_t>(1, out.interval_s);
  for (const SeriesPoint& point : out.points) {
    if (!std::isfinite(point.value)) continue;
    store(graphite_path(point, options_.prefix), out.start_s, interval_s, point.value);
  }
  expire(out.start_s);
  path_count_.store(series_.size(), std::memory_order_relaxed);  // once the interval is in
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

namespace {

// A ReadLimits with no practical bound: the unbounded render/find of tests and the web page.
ReadLimits unbounded_limits() {
  ReadLimits l;
  l.max_targets = l.max_pattern_bytes = l.max_brace_depth = SIZE_MAX / 2;
  l.max_alternatives = 4096;
  l.max_paths = SIZE_MAX / 2;
  l.max_match_steps = l.max_points = l.max_answer_bytes = UINT64_MAX / 2;
  l.max_points_read = UINT64_MAX / 2;
  return l;
}

Error too_much(const std::string& what, const std::string& pattern, const std::string& key) {
  return Error{"the answer for '" + pattern.substr(0, 80) + "' would hold more than " + what,
               "narrow the pattern (fewer *), shorten from/until or set maxDataPoints; or raise "
               "reads." + key};
}

}  // namespace

template <class Fn>
bool MemoryStore::scan(const GraphitePattern& pattern, uint64_t& steps, Fn&& fn) const {
  const std::string& literal = pattern.literal_prefix();
  const uint64_t per_path = std::max<uint64_t>(1, pattern.alternatives());
  auto it = literal.empty() ? series_.begin() : series_.lower_bound(literal);
  for (; it != series_.end(); ++it) {
    const std::string& path = it->first;
    if (!literal.empty() && path.compare(0, literal.size(), literal) != 0) break;
    if (steps < per_path) return false;
    steps -= per_path;
    if (!fn(path, it->second)) return true;
  }
  return true;
}

Result<nlohmann::json> MemoryStore::find(const GraphitePattern& query,
                                         const ReadLimits& limits) const {
  nlohmann::json result = nlohmann::json::array();
  std::set<std::string> seen;
  uint64_t steps = limits.max_match_steps;
  bool too_many = false;
  bool scanned = scan(query, steps, [&](const std::string& path, const Ring&) {
    query.for_each_prefix_match(path, [&](size_t id_len, bool leaf) {
      std::string id = path.substr(0, id_len);
      if (too_many || !seen.insert(id + (leaf ? "\x01" : "\x02")).second) return;
      if (result.size() >= limits.max_paths) {
        too_many = true;
        return;
      }
      size_t dot = id.rfind('.');
      result.push_back({{"text", dot == std::string::npos ? id : id.substr(dot + 1)},
                        {"id", id},
                        {"leaf", leaf ? 1 : 0},
                        {"expandable", leaf ? 0 : 1},
                        {"allowChildren", leaf ? 0 : 1}});
    });
    return !too_many;
  });
  if (too_many) return too_much(std::to_string(limits.max_paths) + " nodes", query.text(),
                                "max_paths");
  if (!scanned) return too_much(std::to_string(limits.max_match_steps) + " path comparisons",
                                query.text(), "max_match_steps");
  return result;
}

nlohmann::json MemoryStore::find(std::string_view query) const {
  if (query.empty()) return nlohmann::json::array();
  size_t budget = 4096;
  auto pattern = GraphitePattern::compile(query, unbounded_limits(), budget);
  if (!pattern) return nlohmann::json::array();
  auto nodes = find(*pattern, unbounded_limits());
  return nodes ? std::move(*nodes) : nlohmann::json::array();
}

size_t MemoryStore::point_count(int64_t step, int64_t from_s, int64_t until_s,
                                size_t max_data_points) const {
  from_s = std::max(from_s, until_s - static_cast<int64_t>(options_.retention.count()));
  int64_t first = floor_to(from_s, step) + step, last = floor_to(until_s, step);
  if (last < first) return 0;
  size_t n = static_cast<size_t>((last - first) / step + 1);
  if (max_data_points == 0 || n <= max_data_points) return n;
  size_t per_point = (n + max_data_points - 1) / max_data_points;
  return (n + per_point - 1) / per_point;
}

nlohmann::json MemoryStore::datapoints(const Ring& ring, int64_t from_s, int64_t until_s,
                                       size_t max_data_points) const {
  nlohmann::json points = nlohmann::json::array();
  int64_t step = ring.interval_s;
  // Whisper's alignment: the first point is the first interval start after `from`, the last
  // the interval start at or before `until`. Nothing older than retention exists here.
  from_s = std::max(from_s, until_s - static_cast<int64_t>(options_.retention.count()));
  int64_t first = floor_to(from_s, step) + step, last = floor_to(until_s, step);
  if (last < first) return points;
  // consolidate_datapoints() computed on the slots: runs of per_point raw points become one
  // point, the average of their non-null values, without a JSON value per raw point.
  size_t n = static_cast<size_t>((last - first) / step + 1);
  size_t per_point = max_data_points == 0 || n <= max_data_points
                         ? 1
                         : (n + max_data_points - 1) / max_data_points;
  for (int64_t run = first; run <= last; run += step * static_cast<int64_t>(per_point)) {
    double sum = 0;
    size_t count = 0;
    for (int64_t ts = run; ts <= last && ts < run + step * static_cast<int64_t>(per_point);
         ts += step) {
      const Slot* slot = ring.find(ts);
      if (!slot || slot->ts != ts) continue;
      sum += slot->value;
      ++count;
    }
    nlohmann::json value = count == 0 ? nlohmann::json(nullptr)
                           : per_point == 1 ? nlohmann::json(sum)
                                            : nlohmann::json(sum / static_cast<double>(count));
    points.push_back({value, run});
  }
  return points;
}

Result<nlohmann::json> MemoryStore::render(const std::vector<GraphitePattern>& targets,
                                           int64_t from_s, int64_t until_s,
                                           size_t max_data_points,
                                           const ReadLimits& limits) const {
  // First the matching paths and the answer's size, then the points: a refusal costs a scan.
  std::vector<std::pair<const std::string*, const Ring*>> matched;
  std::set<std::string_view> seen;
  uint64_t steps = limits.max_match_steps, points = 0, points_read = 0;
  for (const GraphitePattern& target : targets) {
    std::optional<Error> refused;
    bool scanned = scan(target, steps, [&](const std::string& path, const Ring& ring) {
      if (!target.matches(path) || !seen.insert(path).second) return true;
      if (matched.size() >= limits.max_paths) {
        refused = too_much(std::to_string(limits.max_paths) + " series", target.text(),
                           "max_paths");
        return false;
      }
      points += point_count(ring.interval_s, from_s, until_s, max_data_points);
      points_read += point_count(ring.interval_s, from_s, until_s, 0);
      if (points_read > limits.max_points_read) {
        refused = Error{"the answer for '" + target.text().substr(0, 80) + "' would need more "
                        "than " + std::to_string(limits.max_points_read) + " datapoints read "
                        "(before maxDataPoints consolidation)",
                        "narrow the pattern (fewer *) or shorten from/until; or raise "
                        "reads.max_points_read"};
        return false;
      }
      if (points > limits.max_points) {
        refused = too_much(std::to_string(limits.max_points) + " datapoints", target.text(),
                           "max_points");
        return false;
      }
      matched.emplace_back(&path, &ring);
      return true;
    });
    if (refused) return *refused;
    if (!scanned) return too_much(std::to_string(limits.max_match_steps) + " path comparisons",
                                  target.text(), "max_match_steps");
  }
  nlohmann::json result = nlohmann::json::array();
  for (const auto& [path, ring] : matched) {
    result.push_back({{"target", *path},
                      {"datapoints", datapoints(*ring, from_s, until_s, max_data_points)}});
  }
  return result;
}

nlohmann::json MemoryStore::render(const std::vector<std::string>& targets, int64_t from_s,
                                   int64_t until_s, size_t max_data_points) const {
  std::vector<GraphitePattern> patterns;
  size_t budget = 4096;
  for (const std::string& target : targets) {
    auto pattern = GraphitePattern::compile(target, unbounded_limits(), budget);
    if (pattern) patterns.push_back(std::move(*pattern));
  }
  auto result = render(patterns, from_s, until_s, max_data_points, unbounded_limits());
  return result ? std::move(*result) : nlohmann::json::array();
}

}  // namespace statherd::server
