#include "server/sinks/graphite_lines.h"

#include "common/shortest_number.h"

namespace statherd::server {

void GraphiteLineBlock::add(const GraphiteSeriesPath& path, std::string_view component,
                            double value, std::string_view ts) {
  char number[32];
  const char* number_end = write_shortest(number, value);
  text.append(path.text, 0, path.stat_at);
  text.push_back('.');
  text.append(component);
  text.append(path.text, path.stat_at);
  path_lens.push_back(static_cast<uint32_t>(path.text.size() + 1 + component.size()));
  text.push_back(' ');
  text.append(number, static_cast<size_t>(number_end - number));
  text.append(ts);
  ends.push_back(static_cast<uint32_t>(text.size()));
}

}  // namespace statherd::server
