#include "server/sinks/graphite_lines.h"

#include <charconv>

namespace statherd::server {

void GraphiteLineBlock::add(const GraphiteSeriesPath& path, std::string_view component,
                            double value, std::string_view ts) {
  char number[64];
  const char* number_end = std::to_chars(number, number + sizeof number, value).ptr;
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
