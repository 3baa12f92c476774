// The agent's Source interface: one implementation per kind of stat source
// (mmstats_v1 now; statherd_v2, prom_multiproc, scales_http, prometheus_http later).
// A source never throws past scrape(): a bad file or endpoint becomes a SourceError for that
// file only, and every other file of the source is still read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/sample.h"

namespace statherd::agent {

struct ScrapeReport {
  std::vector<SourceSamples> sources;
  std::vector<SourceError> errors;
};

class Source {
 public:
  virtual ~Source() = default;
  // e.g. "mmstats_v1 /tmp/*.mmstats"
  virtual std::string describe() const = 0;
  // The source's kind, stable for self-metric tags: "mmstats_v1", "statherd_v2",
  // "prom_multiproc", "scales", "prometheus". (A default, so a test fake need not name one.)
  virtual std::string kind() const { return "other"; }
  // Read everything once. now_ms is the wall-clock time stamped on every sample.
  virtual void scrape(int64_t now_ms, ScrapeReport& out) = 0;
};

}  // namespace statherd::agent
