// libFuzzer target: the mmstats v1 parser must never crash, hang or read past its input.
#include <cstddef>
#include <cstdint>
#include <span>

#include "agent/sources/mmstats_v1.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  auto fields = statherd::agent::parse_mmstats_v1(bytes);
  auto layout = statherd::agent::parse_mmstats_v1_layout(bytes);
  if (layout.ok()) (void)statherd::agent::mmstats_v1_layout_still_valid(bytes, *layout);
  (void)fields;
  return 0;
}
