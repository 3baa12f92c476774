#include "agent/source_set.h"

#include <algorithm>
#include <functional>

#include "agent/sources/prometheus_http.h"
#include "agent/sources/scales_http.h"

namespace statherd::agent {

MmstatsV1Options mmstats_options(const AgentConfig& c, int64_t last_scan_ms) {
  MmstatsV1Options mm;
  mm.globs = c.mmstats_globs;
  if (c.counter_patterns) mm.counter_patterns = *c.counter_patterns;
  mm.host = c.host;
  mm.fresh_if_started_after_ms = last_scan_ms;
  mm.max_file_bytes = c.max_file_bytes;
  return mm;
}

StatherdV2Options v2_options(const AgentConfig& c, int64_t last_scan_ms, bool one_shot) {
  StatherdV2Options v2;
  v2.globs = c.v2_globs;
  v2.host = c.host;
  v2.fresh_if_started_after_ms = last_scan_ms;
  v2.one_shot = one_shot;
  v2.max_file_bytes = c.max_file_bytes;
  return v2;
}

void add_prom_multiproc_source(const AgentConfig& c, bool one_shot,
                               std::vector<std::unique_ptr<Source>>& sources) {
  if (c.prom_multiproc_dirs.empty()) return;
  PromMultiprocOptions pm;
  for (const auto& spec : c.prom_multiproc_dirs)
    pm.dirs.push_back(parse_prom_multiproc_dir_spec(spec));
  pm.host = c.host;
  pm.one_shot = one_shot;
  pm.max_file_bytes = c.max_file_bytes;
  sources.push_back(std::make_unique<PromMultiprocSource>(std::move(pm)));
}

void add_http_sources(const AgentConfig& c, std::vector<std::unique_ptr<Source>>& sources) {
  if (!c.scales_urls.empty())
    sources.push_back(std::make_unique<ScalesHttpSource>(
        ScalesHttpOptions{c.scales_urls, c.scales_counter_patterns, c.scales_timeout,
                          static_cast<size_t>(c.scales_max_bytes), c.host}));
  if (!c.prometheus_urls.empty())
    sources.push_back(std::make_unique<PrometheusHttpSource>(
        PrometheusHttpOptions{c.prometheus_urls, c.prometheus_timeout,
                              static_cast<size_t>(c.prometheus_max_bytes), c.host}));
}

namespace {

// One configured source: its kind, a fingerprint of every option that shapes it (equal
// fingerprints: the running object can be kept), and how to build it.
struct PlannedSource {
  std::string kind, fingerprint;
  std::function<std::unique_ptr<Source>(int64_t last_scan_ms)> build;
};

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += i + '\x1f';  // a separator no glob or URL contains
  return out;
}

std::string fingerprint(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) out += p + '\x1e';
  return out;
}

std::vector<PlannedSource> plan_sources(const AgentConfig& c) {
  std::vector<PlannedSource> plan;
  const std::string patterns = c.counter_patterns ? "set:" + join(*c.counter_patterns) : "default";
  const std::string cap = std::to_string(c.max_file_bytes);
  plan.push_back(
      {"mmstats_v1", fingerprint({c.host, join(c.mmstats_globs), patterns, cap}),
       [c](int64_t t) { return std::make_unique<MmstatsV1Source>(mmstats_options(c, t)); }});
  plan.push_back({"statherd_v2", fingerprint({c.host, join(c.v2_globs), cap}), [c](int64_t t) {
                    return std::make_unique<StatherdV2Source>(v2_options(c, t, false));
                  }});
  if (!c.prom_multiproc_dirs.empty())
    plan.push_back(
        {"prom_multiproc", fingerprint({c.host, join(c.prom_multiproc_dirs), cap}), [c](int64_t) {
           std::vector<std::unique_ptr<Source>> one;
           add_prom_multiproc_source(c, /*one_shot=*/false, one);
           return std::move(one.front());
         }});
  if (!c.scales_urls.empty())
    plan.push_back({"scales",
                    fingerprint({c.host, join(c.scales_urls), join(c.scales_counter_patterns),
                                 std::to_string(c.scales_timeout.count()),
                                 std::to_string(c.scales_max_bytes)}),
                    [c](int64_t) -> std::unique_ptr<Source> {
                      return std::make_unique<ScalesHttpSource>(ScalesHttpOptions{
                          c.scales_urls, c.scales_counter_patterns, c.scales_timeout,
                          static_cast<size_t>(c.scales_max_bytes), c.host});
                    }});
  if (!c.prometheus_urls.empty())
    plan.push_back(
        {"prometheus",
         fingerprint({c.host, join(c.prometheus_urls), std::to_string(c.prometheus_timeout.count()),
                      std::to_string(c.prometheus_max_bytes)}),
         [c](int64_t) -> std::unique_ptr<Source> {
           return std::make_unique<PrometheusHttpSource>(
               PrometheusHttpOptions{c.prometheus_urls, c.prometheus_timeout,
                                     static_cast<size_t>(c.prometheus_max_bytes), c.host});
         }});
  return plan;
}

}  // namespace

SourceSet::SourceSet(const AgentConfig& c, int64_t last_scan_ms) {
  for (auto& p : plan_sources(c)) {
    sources_.push_back(p.build(last_scan_ms));
    kinds_.push_back(std::move(p.kind));
    fingerprints_.push_back(std::move(p.fingerprint));
  }
}

std::vector<std::string> SourceSet::update(const AgentConfig& c, int64_t last_scan_ms) {
  std::vector<std::string> changes;
  std::vector<std::unique_ptr<Source>> sources;
  std::vector<std::string> kinds, fingerprints;
  for (auto& p : plan_sources(c)) {
    size_t old = 0;
    while (old < kinds_.size() && kinds_[old] != p.kind) ++old;
    if (old < kinds_.size() && sources_[old] && fingerprints_[old] == p.fingerprint) {
      sources.push_back(std::move(sources_[old]));  // unchanged: keep its state
    } else {
      sources.push_back(p.build(last_scan_ms));
      changes.push_back(p.kind +
                        (old < kinds_.size() ? " rebuilt (options changed): " : " added: ") +
                        sources.back()->describe());
    }
    kinds.push_back(std::move(p.kind));
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
