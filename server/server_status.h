// What the server's parts publish about themselves for its self-metrics and GET /readyz:
// written by the pipeline (rollup time) and the HTTP transport (connections, draining), read
// by ServerRuntime from any thread. Made first, so every part gets it at construction.
#pragma once

#include <atomic>
#include <cstdint>

namespace statherd::server {

struct ConnectionCounts {
  uint32_t open = 0;     // connections now
  uint64_t evicted = 0;  // idle connections closed at the cap to admit a new one
  uint64_t refused = 0;  // new connections closed at the cap (none was idle)
};

struct ServerStatus {
  std::atomic<double> last_rollup_ms{0};   // Engine::flush + handing it to every sink
  std::atomic<bool> draining{false};       // shutdown began: GET /readyz answers 503
  std::atomic<uint32_t> connections_open{0};
  std::atomic<uint64_t> connections_evicted{0}, connections_refused{0};
  std::atomic<uint32_t> max_connections{0};  // the cap in force (maybe lowered at listen)

  ConnectionCounts connections() const {
    return {connections_open.load(), connections_evicted.load(), connections_refused.load()};
  }
};

}  // namespace statherd::server
