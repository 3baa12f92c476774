// libFuzzer target: the Graphite time parser of /render's from= and until= must never crash or
// overflow (UBSan), and an accepted relative time must lie on the right side of now.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/memory_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  constexpr int64_t kNow = 1'764'000'000;
  auto t = statherd::server::parse_graphite_time(text, kNow);
  if (t.ok() && size > 1 && text.front() == '-' && *t > kNow) std::abort();
  if (t.ok() && size > 1 && text.front() == '+' && *t < kNow) std::abort();
  return 0;
}
