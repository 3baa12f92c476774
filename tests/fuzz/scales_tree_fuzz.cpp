// libFuzzer target: the Scales /status JSON tree walker (Python-style JSON with NaN/Infinity,
// meters, PMFs, nested groups) must never crash, hang or throw past its boundary.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/sources/scales_http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const statherd::agent::LabelPatternSet kCounters({"*count", "*errors"});
  auto tree = statherd::agent::scales_tree_samples(
      std::string_view(reinterpret_cast<const char*>(data), size), kCounters, 0);
  (void)tree;
  return 0;
}
