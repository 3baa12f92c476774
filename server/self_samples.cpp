#include "server/self_samples.h"

#include <string_view>

namespace statherd::server {

namespace {

constexpr std::string_view kPrefix = "statherd_server_";

std::string self_name(std::string_view family, bool counter) {
  family.remove_prefix(kPrefix.size());
  if (counter && family.ends_with("_total")) family.remove_suffix(6);
  return "server." + std::string(family);
}

}  // namespace

SourceSamples self_samples_from_families(const std::vector<prometheus::MetricFamily>& families,
                                         const SourceIdentity& id, int64_t now_ms) {
  SourceSamples out;
  out.id = id;
  for (const prometheus::MetricFamily& family : families) {
    if (!std::string_view(family.name).starts_with(kPrefix)) continue;
    const bool counter = family.type == prometheus::MetricType::Counter;
    if (!counter && family.type != prometheus::MetricType::Gauge) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      Sample s;
      s.name = self_name(family.name, counter);
      s.kind = counter ? Kind::Counter : Kind::Gauge;
      s.timestamp_ms = now_ms;
      s.value = counter ? metric.counter.value : metric.gauge.value;
      for (const prometheus::ClientMetric::Label& label : metric.label)
        s.tags.emplace_back(label.name, label.value);
      out.samples.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace statherd::server
