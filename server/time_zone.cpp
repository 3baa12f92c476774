#include "server/time_zone.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

namespace statherd::server {

namespace {

uint32_t be32(std::string_view b, size_t at) {
  auto u = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(b[at + i])); };
  return u(0) << 24 | u(1) << 16 | u(2) << 8 | u(3);
}

// A zone name that stays inside the zone directory: "Area/City", letters, digits, "_+-".
bool safe_zone_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '/' || name.back() == '/')
    return false;
  if (name.find("..") != std::string_view::npos || name.find("//") != std::string_view::npos)
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '+' ||
           c == '-';
  });
}

}  // namespace

std::optional<TimeZone> TimeZone::from_tzif(std::string_view b) {
  constexpr size_t kHeader = 44;
  if (b.size() < kHeader || b.substr(0, 4) != "TZif") return std::nullopt;
  const uint64_t isutcnt = be32(b, 20), isstdcnt = be32(b, 24), leapcnt = be32(b, 28);
  const uint64_t timecnt = be32(b, 32), typecnt = be32(b, 36), charcnt = be32(b, 40);
  const uint64_t need = kHeader + timecnt * 5 + typecnt * 6 + charcnt + leapcnt * 8 + isstdcnt +
                        isutcnt;
  if (typecnt == 0 || typecnt > 256 || timecnt > 100'000 || need > b.size()) return std::nullopt;
  auto zone = std::make_shared<Zone>();
  size_t at = kHeader;
  for (uint64_t i = 0; i < timecnt; ++i, at += 4)
    zone->transitions.push_back(static_cast<int32_t>(be32(b, at)));
  for (uint64_t i = 0; i < timecnt; ++i, ++at) {
    auto index = static_cast<uint8_t>(b[at]);
    if (index >= typecnt) return std::nullopt;
    zone->types.push_back(index);
  }
  for (uint64_t i = 0; i < typecnt; ++i, at += 6) {
    auto offset = static_cast<int64_t>(static_cast<int32_t>(be32(b, at)));
    // RFC 8536: an offset is within -25 h..+26 h; a file with another is no zone file
    if (offset < -89999 || offset > 93599) return std::nullopt;
    // pytz keeps offsets in whole minutes (local mean times like +0:09:21 become +0:09)
    offset = (offset + 30 - ((offset + 30) % 60 + 60) % 60);
    zone->kinds.push_back({static_cast<int32_t>(offset), b[at + 4] != 0});
  }
  if (!std::is_sorted(zone->transitions.begin(), zone->transitions.end())) return std::nullopt;
  // before the first transition: the first standard time, as pytz
  auto standard = std::find_if(zone->kinds.begin(), zone->kinds.end(),
                               [](const Type& t) { return !t.dst; });
  zone->before = standard != zone->kinds.end() ? *standard : zone->kinds.front();
  if (zone->transitions.empty()) {
    zone->before = zone->kinds.front();
  }
  TimeZone tz;
  tz.zone_ = std::move(zone);
  return tz;
}

namespace {

// Every zone name of `dir` as pytz knows them (the Area/City files; not the right/ and posix/
// copies, posixrules or localtime), by its lower-case form: pytz finds a name whatever its
// case.
std::map<std::string, std::string> zone_names(const std::string& dir) {
  std::map<std::string, std::string> names;
  std::error_code ec;
  namespace fs = std::filesystem;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path rel = it->path().lexically_relative(dir);
    const std::string name = rel.generic_string();
    if (name == "right" || name == "posix") {
      it.disable_recursion_pending();
      continue;
    }
    if (name == "localtime" || name == "posixrules" || !safe_zone_name(name)) continue;
    std::error_code file_ec;
    if (!it->is_regular_file(file_ec)) continue;
    std::ifstream in(it->path(), std::ios::binary);
    char magic[4] = {};
    if (!in.read(magic, 4) || std::string_view(magic, 4) != "TZif") continue;
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    names.emplace(std::move(lower), name);
  }
  return names;
}

}  // namespace

std::optional<TimeZone> TimeZone::named(std::string_view name, const std::string& dir) {
  // pytz's _unmunge_zone: "Etc/GMT_plus_5" is "Etc/GMT+5"
  std::string wanted(name.substr(0, 128));
  for (auto [from, to] : {std::pair<std::string_view, char>{"_plus_", '+'}, {"_minus_", '-'}}) {
    for (size_t at; (at = wanted.find(from)) != std::string::npos;)
      wanted.replace(at, from.size(), 1, to);
  }
  if (!safe_zone_name(wanted)) return std::nullopt;
  for (char& c : wanted) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static std::mutex mutex;
  static std::map<std::string, std::map<std::string, std::string>> names_by_dir;
  static std::map<std::string, TimeZone> zones;  // only zones that exist: bounded by tzdata
  std::lock_guard lock(mutex);
  auto dir_names = names_by_dir.find(dir);
  if (dir_names == names_by_dir.end()) dir_names = names_by_dir.emplace(dir, zone_names(dir)).first;
  auto canonical = dir_names->second.find(wanted);
  if (canonical == dir_names->second.end()) return std::nullopt;
  const std::string path = dir + "/" + canonical->second;
  if (auto it = zones.find(path); it != zones.end()) return it->second;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  const std::string text = bytes.str();
  auto tz = text.size() <= (1u << 20) ? from_tzif(text) : std::nullopt;
  if (tz) zones.emplace(path, *tz);
  return tz;
}

const TimeZone::Type& TimeZone::type_at(int64_t utc_s) const {
  const Zone& z = *zone_;
  auto it = std::upper_bound(z.transitions.begin(), z.transitions.end(), utc_s);
  if (it == z.transitions.begin()) return z.before;
  return z.kinds[z.types[static_cast<size_t>(it - z.transitions.begin() - 1)]];
}

int64_t TimeZone::offset_at(int64_t utc_s) const {
  return zone_ ? type_at(utc_s).offset : 0;
}

int64_t TimeZone::localize(int64_t local_s) const {
  if (!zone_) return local_s;
  for (int gap_steps = 0; gap_steps < 4; ++gap_steps) {
    // pytz: the offsets in effect a day before and a day after (looked up with the wall
    // time), each kept if it is the offset at the instant it gives
    struct Candidate {
      int64_t utc;
      bool dst;
    };
    std::vector<Candidate> found;
    for (int64_t day : {-86400, 86400}) {
      const Type& guess = type_at(local_s + day);
      const int64_t utc = local_s - guess.offset;
      const Type& actual = type_at(utc);
      if (actual.offset != guess.offset) continue;
      if (std::none_of(found.begin(), found.end(),
                       [&](const Candidate& c) { return c.utc == utc; }))
        found.push_back({utc, actual.dst});
    }
    if (found.size() == 1) return found[0].utc + gap_steps * 6 * 3600;
    if (found.empty()) {  // skipped by a change: localize(t - 6h) + 6h
      local_s -= 6 * 3600;
      continue;
    }
    std::vector<Candidate> standard;
    for (const Candidate& c : found)
      if (!c.dst) standard.push_back(c);
    const auto& pick = standard.empty() ? found : standard;
    int64_t latest = pick[0].utc;
    for (const Candidate& c : pick) latest = std::max(latest, c.utc);
    return latest + gap_steps * 6 * 3600;
  }
  return local_s + 4 * 6 * 3600 - type_at(local_s).offset;
}

}  // namespace statherd::server
