// A series as graphite-web's functions see it (graphite.render.datalib.TimeSeries): a name, the
// path expression it came from (aggregates name themselves after it), start/end/step in unix
// seconds, one value per step from start (NaN: None), and the consolidation applied when it is
// read `values_per_point` at a time (normalize(), maxDataPoints, consolidateBy()).
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace statherd::server::render {

inline constexpr double kNone = NAN;
inline bool is_none(double v) {
  return std::isnan(v);
}

struct Series {
  std::string name;
  std::string path_expression;
  int64_t start = 0, end = 0, step = 1;  // end: one step past the last value, as Whisper's
  std::vector<double> values;
  std::string consolidation = "average";  // average|avg|avg_zero|sum|max|min|first|last
  size_t values_per_point = 1;
  double xfiles_factor = 0;
  std::map<std::string, std::string> tags;  // {"name": path} for a stored series

  // The values as iterating the TimeSeries gives them: runs of values_per_point consolidated.
  std::vector<double> read() const;
  // read() made permanent: values_per_point back to 1, step multiplied.
  void apply_consolidation();
};

// graphite-web's TimeSeries consolidation of one run (NaN when too few non-None values).
double consolidate_run(const double* first, size_t count, size_t values_per_point,
                       const std::string& function, double xfiles_factor);

}  // namespace statherd::server::render
