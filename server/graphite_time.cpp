#include "server/graphite_time.h"

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <optional>
#include <string>

namespace statherd::server {

namespace {

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

}  // namespace statherd::server
