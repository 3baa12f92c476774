// libFuzzer target: the Prometheus text parser and its mapping to samples must never crash, hang
// or read past their input. The same bytes also go through the Scales tree walker (JSON).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "agent/sources/prometheus_text.h"
#include "agent/sources/scales_http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  auto families = statherd::agent::parse_prometheus_text(bytes);
  if (families.ok()) (void)statherd::agent::prometheus_samples(*families, 0);
  static const statherd::agent::LabelPatternSet kCounters({"*count", "*errors"});
  auto tree = statherd::agent::scales_tree_samples(
      std::string_view(reinterpret_cast<const char*>(data), size), kCounters, 0);
  (void)tree;
  return 0;
}
