// The server's Sink interface: one implementation per output (graphite, memory store;
// prometheus and remote_write later). emit() must not block ingest: a sink that talks to the
// network queues (bounded, drop-oldest with a counter) and sends from its own thread.
#pragma once

#include <cstdint>
#include <string>

#include "server/series_point.h"

namespace statherd::server {

class Sink {
 public:
  virtual ~Sink() = default;
  virtual std::string name() const = 0;
  virtual void emit(const IntervalOutput& out) = 0;
  // Flush what is queued (bounded by the sink's own deadline) and stop its thread.
  virtual void stop() {}
};

}  // namespace statherd::server
