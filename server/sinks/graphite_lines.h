// The Graphite sink's queue holds lines in blocks: the lines of one emit back to back in one
// buffer ("path value ts\n" each), not one allocation per line; the sender writes runs of them
// as they are. The queue's bound and drops still count lines.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace statherd::server {

struct GraphiteLineBlock {
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
  // Ends the line appended to text since the previous one; its path is path_len bytes.
  void end_line(uint32_t path_len) {
    ends.push_back(static_cast<uint32_t>(text.size()));
    path_lens.push_back(path_len);
  }
};

}  // namespace statherd::server
