#include "server/render/output.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/shortest_number.h"
#include "server/render/functions.h"

namespace statherd::server::render {
namespace {

void append_value(std::string& out, double v) {
  if (is_none(v)) {
    out += "null";
  } else if (std::isinf(v)) {
    out += v > 0 ? "1e9999" : "-1e9999";
  } else {
    char buf[32];
    out.append(buf, write_shortest(buf, v));
  }
}

void append_string(std::string& out, const std::string& s) {
  out += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Python's floor modulo (the timestamps are positive; kept exact for any sign).
int64_t py_mod(int64_t a, int64_t b) {
  int64_t m = a % b;
  return m != 0 && ((m < 0) != (b < 0)) ? m + b : m;
}

}  // namespace

std::string json_answer(std::vector<Series>& series, const OutputOptions& options,
                        size_t& points_written) {
  points_written = 0;
  std::string out = "[";
  if (!series.empty()) {
    int64_t start = series[0].start, end = series[0].end;
    for (const Series& s : series) {
      start = std::min(start, s.start);
      end = std::max(end, s.end);
    }
    const int64_t time_range = end - start;
    bool first_series = true;
    for (Series& s : series) {
      if (options.max_data_points) {
        size_t mdp = *options.max_data_points;
        if (mdp == 1) {
          s.values_per_point = std::max<size_t>(1, s.values.size());
        } else {
          double points = static_cast<double>(time_range) / static_cast<double>(s.step);
          if (static_cast<double>(mdp) < points) {
            auto per_point = static_cast<size_t>(std::ceil(points / static_cast<double>(mdp)));
            auto seconds_per_point = static_cast<int64_t>(per_point) * s.step;
            int64_t nudge =
                seconds_per_point + py_mod(s.start, s.step) - py_mod(s.start, seconds_per_point);
            s.start += nudge;
            auto lose =
                static_cast<int64_t>(static_cast<double>(nudge) / static_cast<double>(s.step));
            // graphite-web deletes nudge/step - 1 values from the front
            auto drop = static_cast<size_t>(
                std::clamp<int64_t>(lose - 1, 0, static_cast<int64_t>(s.values.size())));
            s.values.erase(s.values.begin(), s.values.begin() + static_cast<ptrdiff_t>(drop));
            s.values_per_point = per_point;
          }
        }
      }
      std::vector<double> values = s.read();
      const int64_t step = s.step * static_cast<int64_t>(s.values_per_point);
      std::string points;
      size_t i = 0;
      bool any = false;
      for (int64_t ts = s.start; ts <= s.end && i < values.size(); ts += step, ++i) {
        if (options.no_null_points && (is_none(values[i]))) continue;
        points += any ? ",[" : "[";
        any = true;
        append_value(points, values[i]);
        points += ",";
        points += std::to_string(ts);
        points += "]";
        ++points_written;
      }
      if (options.no_null_points && !any) continue;
      out += first_series ? "{\"target\":" : ",{\"target\":";
      first_series = false;
      append_string(out, s.name);
      out += ",\"tags\":{";
      bool first_tag = true;
      for (const auto& [k, v] : s.tags) {
        if (!first_tag) out += ",";
        first_tag = false;
        append_string(out, k);
        out += ":";
        append_string(out, v);
      }
      out += "},\"datapoints\":[";
      out += points;
      out += "]}";
    }
  }
  out += "]";
  if (!options.jsonp.empty()) return options.jsonp + "(" + out + ")";
  return out;
}

std::string csv_answer(const std::vector<Series>& series, const TimeZone& zone) {
  std::string out;
  for (const Series& s : series) {
    std::vector<double> values = s.read();
    for (size_t i = 0; i < values.size(); ++i) {
      const int64_t ts = s.start + static_cast<int64_t>(i) * s.step;
      std::time_t t = static_cast<std::time_t>(ts + zone.offset_at(ts));  // the zone's clock
      std::tm tm{};
      gmtime_r(&t, &tm);
      char stamp[32];
      std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
      // csv's quoting of a name holding a comma, a quote or a line break
      std::string name = s.name;
      if (name.find_first_of(",\"\r\n") != std::string::npos) {
        std::string q = "\"";
        for (char c : name) q += c == '"' ? std::string("\"\"") : std::string(1, c);
        name = q + "\"";
      }
      out += name + "," + stamp + "," + (is_none(values[i]) ? "" : py_repr(values[i])) + "\r\n";
    }
  }
  return out;
}

std::string raw_answer(const std::vector<Series>& series) {
  std::string out;
  for (const Series& s : series) {
    out += s.name + "," + std::to_string(s.start) + "," + std::to_string(s.end) + "," +
           std::to_string(s.step) + "|";
    std::vector<double> values = s.read();
    for (size_t i = 0; i < values.size(); ++i) {
      if (i) out += ",";
      out += is_none(values[i]) ? "None" : py_repr(values[i]);
    }
    out += "\n";
  }
  return out;
}

}  // namespace statherd::server::render
