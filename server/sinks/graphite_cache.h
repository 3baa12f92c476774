// The Graphite sink's per-series cache (server/sinks/series_cache.h, keyed by SeriesKey::id):
// a key's series path is built and sanitized the first time the key is seen, each of its stats'
// rule verdict and collision check the first time that stat is seen; a steady interval only
// looks entries up. configure() (a reload: prefix, tags or rules changed) empties it, so the
// next emit names every series the new way. Used from the sink's emit thread only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "server/graphite_rules.h"
#include "server/rollup_record.h"
#include "server/sinks/graphite_collisions.h"
#include "server/sinks/graphite_series.h"
#include "server/sinks/series_cache.h"

namespace statherd::server {

class GraphiteSeriesCache {
 public:
  struct Naming {
    std::string prefix = "statherd";
    bool tags = false;
    GraphiteRules rules;
  };

  GraphiteSeriesCache() = default;
  explicit GraphiteSeriesCache(Naming naming) : naming_(std::move(naming)) {}
  GraphiteSeriesCache(const GraphiteSeriesCache&) = delete;
  GraphiteSeriesCache& operator=(const GraphiteSeriesCache&) = delete;
  ~GraphiteSeriesCache();

  // New naming: drops every entry (and its paths' ownership) when it differs from the current.
  void configure(Naming naming);
  void begin_emit() { entries_.begin_emit(); }
  GraphiteSeries& series(const SeriesKey* key, SeriesKind kind);
  // The slot of the stat `name`, the record's `index`-th stat (the position is a hint).
  const GraphiteSeries::Slot& slot(GraphiteSeries& s, size_t index, std::string_view name) {
    if (index < s.slots.size() && names_.is(s.slots[index].stat, name)) return s.slots[index];
    return find_or_add_slot(s, name);
  }
  void end_emit();

  const std::string& component(const GraphiteSeries::Slot& slot) const {
    return names_.component(slot.stat);
  }
  uint64_t collisions() const { return collisions_.total(); }
  size_t size() const { return entries_.size(); }

 private:
  const GraphiteSeries::Slot& find_or_add_slot(GraphiteSeries& s, std::string_view name);

  Naming naming_;
  GraphiteStatNames names_;
  PathCollisions collisions_;
  SeriesCache<GraphiteSeries> entries_;
};

}  // namespace statherd::server
