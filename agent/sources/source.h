// The agent's Source interface: one implementation per kind of stat source (mmstats_v1,
// statherd_v2, prom_multiproc, scales, prometheus). Each kind registers itself in
// agent/source_registry.h; nothing else in the agent names a kind.
// A source never throws past scrape(): a bad file or endpoint becomes a SourceError for that
// file only, and every other file of the source is still read.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/sample.h"

namespace statherd::agent {

struct ScrapeReport {
  std::vector<SourceSamples> sources;
  std::vector<SourceError> errors;
};

// Receives one file's (or endpoint's) samples; it may move from them (the object may be reused
// for the next one, so what it does not move keeps its capacity). Return false to stop.
using SourceSamplesVisitor = std::function<bool(SourceSamples&)>;

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
  // Like scrape(), but hands each SourceSamples to `on_source` as soon as it is read (--once
  // streams 100,000s of samples this way). Default: scrape(), then visit each.
  virtual void scrape_each(int64_t now_ms, const SourceSamplesVisitor& on_source,
                           std::vector<SourceError>& errors) {
    ScrapeReport report;
    scrape(now_ms, report);
    for (auto& ss : report.sources)
      if (!on_source(ss)) break;
    for (auto& e : report.errors) errors.push_back(std::move(e));
  }
  // False for sources that wait on the network: the scrape at shutdown skips them.
  virtual bool reads_local_files() const { return true; }
};

}  // namespace statherd::agent
