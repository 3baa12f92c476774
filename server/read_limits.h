// Bounds on the work of one read request (/render, /metrics/find, the web page), so that no
// query can take the server's memory or time: config keys reads.* (config/server.yaml) and
// docs/API.md ("Limits"). A pattern over a limit is a 400, an answer over one a 413.
#pragma once

#include <cstddef>
#include <cstdint>

namespace statherd::server {

struct ReadLimits {
  size_t max_targets = 100;               // target= per /render request
  size_t max_pattern_bytes = 1024;        // one target or find query
  size_t max_brace_depth = 8;             // nesting of {..} in one pattern
  size_t max_alternatives = 1000;         // after brace expansion, summed over a request
  size_t max_paths = 10'000;              // series of a /render answer, nodes of a find answer
  uint64_t max_match_steps = 20'000'000;  // (stored path x alternative) comparisons a request
  uint64_t max_points = 500'000;          // datapoints of a /render answer
  uint64_t max_points_read = 50'000'000;  // stored slots a /render reads, before maxDataPoints
  uint64_t max_answer_bytes = 16ull << 20;
};

}  // namespace statherd::server
