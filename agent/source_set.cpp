#include "agent/source_set.h"

#include <algorithm>

#include "agent/source_registry.h"

namespace statherd::agent {
namespace {

// One configured source: its kind, the fingerprint of its options (equal fingerprints: the
// running object can be kept) and its kind's builder.
struct PlannedSource {
  const SourceKind* kind;
  std::string fingerprint;
};

std::vector<PlannedSource> plan_sources(const AgentConfig& c) {
  std::vector<PlannedSource> plan;
  for (const SourceKind* kind : source_kinds())
    if (kind->configured(c)) plan.push_back({kind, kind->fingerprint(c)});
  return plan;
}

}  // namespace

SourceSet::SourceSet(const AgentConfig& c, int64_t last_scan_ms) {
  for (auto& p : plan_sources(c)) {
    sources_.push_back(p.kind->build(c, last_scan_ms, /*one_shot=*/false));
    kinds_.push_back(p.kind->name);
    fingerprints_.push_back(std::move(p.fingerprint));
  }
}

std::vector<std::string> SourceSet::update(const AgentConfig& c, int64_t last_scan_ms) {
  std::vector<std::string> changes;
  std::vector<std::unique_ptr<Source>> sources;
  std::vector<std::string> kinds, fingerprints;
  for (auto& p : plan_sources(c)) {
    size_t old = 0;
    while (old < kinds_.size() && kinds_[old] != p.kind->name) ++old;
    if (old < kinds_.size() && sources_[old] && fingerprints_[old] == p.fingerprint) {
      sources.push_back(std::move(sources_[old]));  // unchanged: keep its state
    } else {
      sources.push_back(p.kind->build(c, last_scan_ms, /*one_shot=*/false));
      changes.push_back(std::string(p.kind->name) +
                        (old < kinds_.size() ? " rebuilt (options changed): " : " added: ") +
                        sources.back()->describe());
    }
    kinds.push_back(p.kind->name);
    fingerprints.push_back(std::move(p.fingerprint));
  }
  for (size_t i = 0; i < kinds_.size(); ++i)
    if (sources_[i] && std::find(kinds.begin(), kinds.end(), kinds_[i]) == kinds.end())
      changes.push_back(kinds_[i] + " removed");
  sources_ = std::move(sources);
  kinds_ = std::move(kinds);
  fingerprints_ = std::move(fingerprints);
  return changes;
}

}  // namespace statherd::agent
