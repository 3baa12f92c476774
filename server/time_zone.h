// A time zone read from the system's compiled zone files (/usr/share/zoneinfo, Debian's tzdata)
// as Python's pytz reads them, for /render's `tz` (graphite-web 1.1.8 parses times and writes
// CSV times in it): the TZif file's first (32-bit) block of transitions, which pytz uses.
// Debian's files list transitions explicitly up to 2037; later times keep the last offset.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace statherd::server {

class TimeZone {
 public:
  // UTC: offset 0 always.
  TimeZone() = default;

  // The zone of that name ("Europe/Paris", "america/new_york", "Etc/GMT_plus_5", "UTC") as
  // pytz finds it: any case, "_plus_"/"_minus_" for '+'/'-', among the zone files of `dir`
  // (not its right/ and posix/ copies, posixrules or localtime); nullopt for another name
  // (graphite-web then keeps its default zone). Names are listed once, zones read once.
  static std::optional<TimeZone> named(std::string_view name,
                                       const std::string& dir = "/usr/share/zoneinfo");
  // The zone from the bytes of a TZif file (tests); nullopt if they are not one.
  static std::optional<TimeZone> from_tzif(std::string_view bytes);

  // Seconds east of UTC at this instant.
  int64_t offset_at(int64_t utc_s) const;
  // The instant of a wall-clock time in this zone (seconds since 1970 as if the wall clock
  // were UTC), as pytz's localize(is_dst=False): a time repeated when the clocks go back is
  // the later one (standard time); a time skipped when they go forward is read with the
  // offset from before the change.
  int64_t localize(int64_t local_s) const;

 private:
  struct Type {
    int32_t offset = 0;
    bool dst = false;
  };
  struct Zone {
    std::vector<int64_t> transitions;  // UTC seconds, ascending
    std::vector<uint8_t> types;        // per transition, index into `kinds`
    std::vector<Type> kinds;
    Type before;                       // before the first transition
  };
  const Type& type_at(int64_t utc_s) const;
  std::shared_ptr<const Zone> zone_;  // null: UTC
};

}  // namespace statherd::server
