// libFuzzer target: the prometheus_client .db parser (layout, keys, file names) must never
// crash, hang or read past its input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "agent/sources/prom_multiproc.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  auto entries = statherd::agent::parse_prom_db(bytes);
  (void)entries;
  // Layout extension from a partial parse, as the source does when a writer appends.
  if (auto used = statherd::agent::read_prom_db_used(bytes); used.ok()) {
    statherd::agent::PromDbLayout layout;
    const uint32_t half = std::max<uint32_t>(statherd::agent::kPromDbHeaderBytes, *used / 2);
    (void)statherd::agent::extend_prom_db_layout(bytes.first(half), half, layout);
    (void)statherd::agent::extend_prom_db_layout(bytes, *used, layout);
  }
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)statherd::agent::parse_prom_db_key(text);
  (void)statherd::agent::parse_prom_db_file_name(text);
  return 0;
}
