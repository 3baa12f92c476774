#include "server/render/series.h"

#include <algorithm>

namespace statherd::server::render {

double consolidate_run(const double* first, size_t count, size_t values_per_point,
                       const std::string& function, double xfiles_factor) {
  // graphite-web's TimeSeries.__consolidatingGenerator: avg_zero counts a None as 0; the run
  // is None unless non-None values / values_per_point reach the xFilesFactor.
  std::vector<double> usable;
  usable.reserve(count);
  size_t non_null = 0;
  for (size_t i = 0; i < count; ++i) {
    if (!is_none(first[i])) {
      usable.push_back(first[i]);
      ++non_null;
    } else if (function == "avg_zero") {
      usable.push_back(0.0);
    }
  }
  if (non_null == 0 ||
      static_cast<double>(non_null) / static_cast<double>(values_per_point) < xfiles_factor) {
    return kNone;
  }
  if (function == "sum") {
    double s = 0;
    for (double v : usable) s += v;
    return s;
  }
  if (function == "max") return *std::max_element(usable.begin(), usable.end());
  if (function == "min") return *std::min_element(usable.begin(), usable.end());
  if (function == "first") return usable.front();
  if (function == "last") return usable.back();
  double s = 0;  // average, avg, avg_zero
  for (double v : usable) s += v;
  return s / static_cast<double>(usable.size());
}

std::vector<double> Series::read() const {
  if (values_per_point <= 1) return values;
  std::vector<double> out;
  out.reserve(values.size() / values_per_point + 1);
  for (size_t i = 0; i < values.size(); i += values_per_point) {
    size_t n = std::min(values_per_point, values.size() - i);
    out.push_back(
        consolidate_run(values.data() + i, n, values_per_point, consolidation, xfiles_factor));
  }
  return out;
}

void Series::apply_consolidation() {
  if (values_per_point <= 1) return;
  values = read();
  step *= static_cast<int64_t>(values_per_point);
  values_per_point = 1;
}

}  // namespace statherd::server::render
