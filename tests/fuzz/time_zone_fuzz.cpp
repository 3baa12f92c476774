// libFuzzer target: a TZif file (/render's tz reads /usr/share/zoneinfo) must never crash the
// reader, and a zone read from one answers every instant: localize() gives an instant whose
// offset is one of the zone's, within a day of the wall time.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/time_zone.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto zone = statherd::server::TimeZone::from_tzif(bytes);
  if (!zone) return 0;
  for (int64_t local : {int64_t{0}, int64_t{1'764'000'000}, int64_t{-2'000'000'000},
                        int64_t{2'200'000'000}, int64_t{1'792'895'400}}) {
    const int64_t utc = zone->localize(local);
    const int64_t offset = zone->offset_at(utc);
    if (offset > 86400 * 2 || offset < -86400 * 2) continue;  // a hostile file's offsets
    if (utc - local > 86400 * 3 || local - utc > 86400 * 3) std::abort();
  }
  return 0;
}
