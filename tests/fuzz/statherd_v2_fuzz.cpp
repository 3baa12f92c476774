// libFuzzer target: the statherd v2 parser must never crash, hang or read past its input, and
// every record it accepts must convert to a sample (or a clean error).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "agent/sources/statherd_v2.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Copy into 8-aligned storage, as a real mapping is, so the seq loads take the atomic path.
  std::vector<uint64_t> words((size + 7) / 8);
  if (size) std::memcpy(words.data(), data, size);
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(words.data()), size);
  auto file = statherd::agent::parse_statherd_v2(bytes);
  if (!file) return 0;
  for (size_t i = 0; i < file->records.size(); ++i) {
    statherd::Sample sample;
    (void)statherd::agent::statherd_v2_sample(file->records[i], file->values[i], sample);
  }
  return 0;
}
