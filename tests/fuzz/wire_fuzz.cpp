// libFuzzer target: the agent batch decoder must never crash or read out of bounds, and
// whatever it accepts must re-encode to bytes that decode to the same batch.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "common/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  statherd::WireLimits limits;
  limits.max_samples = 100'000;
  auto r = statherd::decode_batch(std::span<const uint8_t>(data, size), limits);
  if (!r.ok()) return 0;
  std::string again = statherd::encode_batch(*r);
  auto r2 = statherd::decode_batch(again, limits);
  if (!r2.ok() || r2->sample_count() != r->sample_count()) std::abort();
  return 0;
}
