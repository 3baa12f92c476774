// libFuzzer target: the Prometheus text parser and its mapping to samples must never crash, hang
// or read past their input. (The Scales JSON tree has its own target, scales_tree_fuzz.)
#include <cstddef>
#include <cstdint>
#include <span>

#include "agent/sources/prometheus_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  auto families = statherd::agent::parse_prometheus_text(bytes);
  if (families.ok()) (void)statherd::agent::prometheus_samples(*families, 0);
  return 0;
}
