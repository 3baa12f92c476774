// The Graphite sink's queue holds lines in blocks: the lines of one emit back to back in one
// buffer ("path value ts\n" each), not one allocation per line; the sender writes runs of them
// as they are. The queue's bound and drops still count lines.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/sinks/graphite_naming.h"

namespace statherd::server {

struct GraphiteLineBlock {
  static constexpr size_t kBlockBytes = 64 << 20;  // an emit starts a new block past this
  std::string text;
  std::vector<uint32_t> ends;       // one past line i's '\n'
  std::vector<uint32_t> path_lens;  // line i's path is its first path_lens[i] bytes
  size_t first = 0;                 // lines before it are sent or dropped

  size_t start(size_t i) const { return i == 0 ? 0 : ends[i - 1]; }
  size_t left() const { return ends.size() - first; }
  std::string_view line(size_t i) const {
    return std::string_view(text).substr(start(i), ends[i] - start(i));
  }
  std::string_view path(size_t i) const { return line(i).substr(0, path_lens[i]); }
  // Appends "<path before the stat>.<component><tags> <value><ts>" (ts: " <seconds>\n").
  void add(const GraphiteSeriesPath& path, std::string_view component, double value,
           std::string_view ts);
};

}  // namespace statherd::server
