#include "agent/spool_parts.h"

#include <cstring>

namespace statherd::agent {
namespace {

constexpr std::string_view kMagic = "SHP1";

template <typename T>
void put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

template <typename T>
bool take(std::string_view& in, T& v) {
  if (in.size() < sizeof(T)) return false;
  std::memcpy(&v, in.data(), sizeof(T));
  in.remove_prefix(sizeof(T));
  return true;
}

}  // namespace

std::string encode_parts(const std::vector<SpoolPart>& parts) {
  std::string out(kMagic);
  put(out, static_cast<uint32_t>(parts.size()));
  for (const auto& p : parts) {
    put(out, p.floor);
    put(out, p.seq);
    put(out, static_cast<uint64_t>(p.body.size()));
    out += p.body;
  }
  return out;
}

Result<std::vector<SpoolPart>> decode_parts(std::string_view in, const std::string& path) {
  auto bad = [&](const char* what) {
    return make_error(
        "spooled parts file " + path + " is damaged: " + what,
        "the agent moves it to the quarantine; was the disk full or the file edited?");
  };
  if (in.substr(0, kMagic.size()) != kMagic) return bad("no SHP1 magic");
  in.remove_prefix(kMagic.size());
  uint32_t count = 0;
  if (!take(in, count) || count == 0) return bad("no part count");
  std::vector<SpoolPart> parts;
  for (uint32_t i = 0; i < count; ++i) {
    SpoolPart p;
    uint64_t len = 0;
    if (!take(in, p.floor) || !take(in, p.seq) || !take(in, len) || len > in.size())
      return bad("truncated part");
    if (p.seq <= p.floor || (!parts.empty() && p.floor < parts.back().seq))
      return bad("seq windows out of order");
    p.body.assign(in.substr(0, len));
    in.remove_prefix(len);
    parts.push_back(std::move(p));
  }
  if (!in.empty()) return bad("trailing bytes");
  return parts;
}

}  // namespace statherd::agent
