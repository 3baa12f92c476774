// Prometheus text endpoints: GET each URL (as given; /metrics is the usual path) with
// "Accept: text/plain;version=0.0.4", parse the exposition (prometheus_text.h) and report its
// samples: labels -> tags (sorted), counters cumulative, histograms as bucket distributions,
// summaries as summary distributions. A slow, huge, non-text or malformed answer is a
// SourceError for that URL only.
// Identity: host, app (configured "APP=URL", else the URL's host:port), pid -1, path = URL,
// start time = process_start_time_seconds when exposed (EndpointStarts below), else 0.
#pragma once

#include <unordered_map>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/sources/http_endpoints.h"
#include "agent/sources/source.h"

namespace statherd::agent {

struct PrometheusHttpOptions {
  std::vector<std::string> urls;             // "URL" or "APP=URL" (see split_endpoint_spec)
  std::chrono::milliseconds timeout{5'000};  // per request
  size_t max_bytes = kDefaultHttpMaxBodyBytes;
  std::string host;
};

// The identity of an endpoint's process: process_start_time_seconds (exposed by prometheus_client
// and the Go client) becomes the source's start time; when it changes between two reads of one
// URL the process restarted since the previous read, so the source is fresh (its whole state
// counts: a restarted worker that counted past its old totals before the next read is otherwise
// indistinguishable from one that kept running). Without it (or with a value that is not a
// plausible time) the start time stays 0, as before.
class EndpointStarts {
 public:
  void apply(SourceSamples& ss);

 private:
  std::unordered_map<std::string, int64_t> last_;  // URL -> start time (ms) at the last read
};

class PrometheusHttpSource : public Source {
 public:
  explicit PrometheusHttpSource(PrometheusHttpOptions options);
  std::string describe() const override;
  std::string kind() const override { return "prometheus"; }
  bool reads_local_files() const override { return false; }
  // GETs every URL at once; each failure is a SourceError for that URL only.
  void scrape(int64_t now_ms, ScrapeReport& out) override;

 private:
  PrometheusHttpOptions options_;
  std::vector<HttpEndpoint> endpoints_;
  EndpointStarts starts_;
};

}  // namespace statherd::agent
