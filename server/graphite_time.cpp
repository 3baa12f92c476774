#include "server/graphite_time.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <charconv>
#include <initializer_list>
#include <optional>
#include <string>

namespace statherd::server {

namespace {

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

}  // namespace

Result<int64_t> parse_graphite_offset(std::string_view text) {
  const std::string hint = "an offset like -10min, +1h, 2d, 1h30min (units by their first "
                           "letters: s, min, h, d, w, mon, y)";
  std::string_view s = text;
  if (s.empty()) return int64_t{0};
  int64_t sign = 1;
  if (s[0] == '+' || s[0] == '-') {
    sign = s[0] == '-' ? -1 : 1;
    s.remove_prefix(1);
  } else if (s[0] < '0' || s[0] > '9') {
    return make_error("bad time offset '" + std::string(text) + "'", hint);
  }
  int64_t total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    int64_t amount = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + i, amount);
    if (i == 0 || ec != std::errc()) {
      return make_error(i == 0 ? "bad time offset '" + std::string(text) + "'"
                               : "time '" + std::string(text) + "' is out of range",
                        hint);
    }
    s.remove_prefix(i);
    size_t j = 0;
    while (j < s.size() && std::isalpha(static_cast<unsigned char>(s[j]))) ++j;
    std::string_view unit = s.substr(0, j);
    s.remove_prefix(j);
    // graphite-web's getUnitString: by prefix, "min" before "mon"; "m" alone is neither
    int64_t per = unit.starts_with("s")     ? 1
                  : unit.starts_with("min") ? 60
                  : unit.starts_with("h")   ? 3600
                  : unit.starts_with("d")   ? 86400
                  : unit.starts_with("w")   ? 7 * 86400
                  : unit.starts_with("mon") ? 30 * 86400
                  : unit.starts_with("y")   ? 365 * 86400
                                            : 0;
    if (per == 0) return make_error("bad time unit in '" + std::string(text) + "'", hint);
    int64_t delta = 0;
    if (__builtin_mul_overflow(amount, per, &delta) ||
        __builtin_add_overflow(total, sign * delta, &total)) {
      return make_error("time '" + std::string(text) + "' is out of range", hint);
    }
  }
  return total;
}

namespace {

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// The civil date of a day count since 1970-01-01 (the inverse of days_from_civil).
void civil_from_days(int64_t z, int64_t& y, int64_t& m, int64_t& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = yoe + era * 400;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2 ? 1 : 0;
}

bool valid_date(int64_t y, int64_t m, int64_t d) {
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > kDays[m - 1]) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return !(m == 2 && d == 29 && !leap);
}

// graphite-web's parseTimeReference, on the zone's wall clock: "", "now", a time of day (HH:MM, Xam, Xpm,
// noon, midnight, teatime) followed by a day (today, yesterday, tomorrow, MM/DD/YY[YY],
// YYYYMMDD, a month name and day, a weekday name, or nothing: today).
Result<int64_t> parse_reference(std::string ref, int64_t now_s, const TimeZone& zone,
                                const std::string& text, const std::string& hint) {
  if (ref.empty() || ref == "now") return now_s;
  auto bad = [&](const std::string& why) {
    return make_error("bad time '" + text + "': " + why, hint);
  };
  auto number = [](std::string_view s, int64_t& out) {
    if (s.empty() || s.size() > 9 || !all_digits(s)) return false;
    out = digits_value(s);
    return true;
  };
  int64_t hour = 0, minute = 0;
  size_t colon = ref.find(':');
  if (colon != std::string::npos && colon > 0 && colon < 3) {
    if (!number(std::string_view(ref).substr(0, colon), hour) ||
        !number(std::string_view(ref).substr(colon + 1, 2), minute)) {
      return bad("HH:MM expected");
    }
    ref = ref.substr(std::min(ref.size(), colon + 3));
    if (ref.starts_with("am")) {
      ref = ref.substr(2);
    } else if (ref.starts_with("pm")) {
      hour = (hour + 12) % 24;
      ref = ref.substr(2);
    }
  }
  for (const char* half : {"am", "pm"}) {
    size_t at = ref.find(half);
    if (at != std::string::npos && at > 0 && at < 3) {
      if (!number(std::string_view(ref).substr(0, at), hour)) return bad("an hour expected");
      if (half[0] == 'p') hour = (hour + 12) % 24;
      ref = ref.substr(at + 2);
    }
  }
  if (ref.starts_with("noon")) {
    hour = 12, minute = 0, ref = ref.substr(4);
  } else if (ref.starts_with("midnight")) {
    hour = 0, minute = 0, ref = ref.substr(8);
  } else if (ref.starts_with("teatime")) {
    hour = 16, minute = 0, ref = ref.substr(7);
  }
  if (hour > 23 || minute > 59) return bad("no such time of day");
  // days since 1970-01-01 of the reference date, on the zone's wall clock
  int64_t day = floor_div(now_s + zone.offset_at(now_s), 86400);
  int64_t y = 0, m = 0, d = 0;
  static constexpr std::string_view kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                 "jul", "aug", "sep", "oct", "nov", "dec"};
  static constexpr std::string_view kWeekdays[] = {"sun", "mon", "tue", "wed",
                                                   "thu", "fri", "sat"};
  std::string_view three = std::string_view(ref).substr(0, 3);
  auto month_at = std::find(std::begin(kMonths), std::end(kMonths), three);
  auto weekday_at = std::find(std::begin(kWeekdays), std::end(kWeekdays), three);
  if (ref == "today" || ref == "yesterday" || ref == "tomorrow") {
    day += ref == "yesterday" ? -1 : ref == "tomorrow" ? 1 : 0;
  } else if (std::count(ref.begin(), ref.end(), '/') == 2) {  // MM/DD/YY[YY]
    size_t a = ref.find('/'), b = ref.find('/', a + 1);
    std::string_view sv(ref);
    if (!number(sv.substr(0, a), m) || !number(sv.substr(a + 1, b - a - 1), d) ||
        !number(sv.substr(b + 1), y)) {
      return bad("MM/DD/YY expected");
    }
    if (y < 1900) y += 1900;
    if (y < 1970) y += 100;
    if (!valid_date(y, m, d)) return bad("no such date");
    day = days_from_civil(y, m, d);
  } else if (ref.size() == 8 && all_digits(ref)) {  // YYYYMMDD
    y = digits_value(ref.substr(0, 4)), m = digits_value(ref.substr(4, 2));
    d = digits_value(ref.substr(6, 2));
    if (!valid_date(y, m, d)) return bad("no such date");
    day = days_from_civil(y, m, d);
  } else if (month_at != std::end(kMonths)) {  // a month name and the day of the month
    std::string_view sv(ref);
    if (sv.size() >= 2 && all_digits(sv.substr(sv.size() - 2))) {
      d = digits_value(sv.substr(sv.size() - 2));
    } else if (!sv.empty() && all_digits(sv.substr(sv.size() - 1))) {
      d = digits_value(sv.substr(sv.size() - 1));
    } else {
      return bad("the day of the month is required after the month name");
    }
    int64_t today_d = 0;
    civil_from_days(day, y, m, today_d);  // the year of now
    m = (month_at - std::begin(kMonths)) + 1;
    if (!valid_date(y, m, d)) return bad("no such date");
    day = days_from_civil(y, m, d);
  } else if (weekday_at != std::end(kWeekdays)) {  // the last such weekday, today included
    int64_t today = ((day % 7) + 7 + 4) % 7;      // 1970-01-01 was a Thursday
    int64_t offset = today - (weekday_at - std::begin(kWeekdays));
    if (offset < 0) offset += 7;
    day -= offset;
  } else if (!ref.empty()) {
    return bad("unknown day reference '" + ref + "'");
  }
  return zone.localize(day * 86400 + hour * 3600 + minute * 60);
}

}  // namespace

Result<int64_t> parse_graphite_time(std::string_view text, int64_t now_s, const TimeZone& zone) {
  const std::string hint =
      "use now, a relative time like -10min, -1h, now-1d, an absolute one like unix seconds, "
      "HH:MM_YYYYMMDD, YYYYMMDD, MM/DD/YY, or midnight, noon, today, yesterday, monday "
      "(in tz, default UTC), each optionally +/- an offset";
  // graphite-web's parseATTime: lower case, without '_', ',' and spaces
  std::string s;
  for (char c : text) {
    if (c == '_' || c == ',' || c == ' ' || c == '\t') continue;
    s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (s.size() > 64) return make_error("bad time: longer than 64 characters", hint);
  if (all_digits(s)) {
    bool date = s.size() == 8 && digits_value(s.substr(0, 4)) > 1900 &&
                digits_value(s.substr(4, 2)) < 13 && digits_value(s.substr(6)) < 32;
    if (!date) {
      int64_t t = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), t);
      if (ec != std::errc()) return make_error("time '" + std::string(text) + "' is out of range", hint);
      return t;
    }
  }
  size_t split = s.find('+');
  if (split == std::string::npos) split = s.find('-');
  std::string ref = split == std::string::npos ? s : s.substr(0, split);
  std::string offset = split == std::string::npos ? "" : s.substr(split);
  auto base = parse_reference(ref, now_s, zone, std::string(text), hint);
  if (!base) return base;
  auto delta = parse_graphite_offset(offset);
  if (!delta) return Error{delta.error().message, hint};
  int64_t t = 0;
  if (__builtin_add_overflow(*base, *delta, &t)) {
    return make_error("time '" + std::string(text) + "' is out of range", hint);
  }
  return t;
}

}  // namespace statherd::server
