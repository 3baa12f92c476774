// What the Graphite sink keeps per series (GraphiteSeriesCache, keyed by SeriesKey::id): the
// series path, built and sanitized once, and per stat seen its name id and whether the rules
// let its path through. A steady interval only formats values behind these.
#pragma once

#include <cstdint>
#include <vector>

#include "server/rollup_record.h"
#include "server/sinks/graphite_naming.h"

namespace statherd::server {

struct GraphiteSeries {
  struct Slot {
    uint32_t stat = 0;    // GraphiteStatNames id
    bool passes = true;   // GraphiteRules::passes() of the dotted path
  };
  SeriesKeyRef key;
  SeriesKind kind = SeriesKind::Gauge;  // of the first record: one name of two kinds collides
  GraphiteSeriesPath path;
  std::vector<Slot> slots;  // in the order first seen (usually the record's own order)
  // The next live series with the same path text (PathCollisions' list; nullptr at its end).
  GraphiteSeries* next_holder = nullptr;
};

}  // namespace statherd::server
