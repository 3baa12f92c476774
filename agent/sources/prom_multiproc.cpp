// The pure parser of prometheus_client multiprocess .db files. Format: prom_multiproc.h.
#include <algorithm>
#include <cstring>

#include "agent/sources/prom_multiproc.h"

namespace statherd::agent {
namespace {

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

std::string at(uint64_t offset) { return " at offset " + std::to_string(offset); }

// Bytes of space padding after a key of key_len bytes, as the writer computes it.
uint32_t padding_after(uint32_t key_len) { return 8 - (key_len + 4) % 8; }

bool looks_like_key(const uint8_t* key, uint32_t len) {
  return len >= 2 && key[0] == '[' && key[len - 1] == ']';
}

// Walks entries from `from` to `used` with `value_bytes` after each key into `out`.
Status walk_entries(std::span<const uint8_t> bytes, uint32_t from, uint32_t used,
                    uint32_t value_bytes, std::vector<PromDbEntryLayout>& out) {
  uint64_t pos = from;
  while (pos < used) {
    if (pos + 4 > used)
      return make_error("entry header cut off by the used size" + at(pos));
    const uint32_t key_len = load_u32(bytes.data() + pos);
    if (key_len == 0 || key_len > kPromDbMaxKeyBytes)
      return make_error("bad key length" + at(pos));
    const uint64_t value_at = pos + 4 + key_len + padding_after(key_len);
    const uint64_t end = value_at + value_bytes;
    if (end > used)
      return make_error("entry runs past the used size" + at(pos));
    if (!looks_like_key(bytes.data() + pos + 4, key_len))
      return make_error("key is not a JSON array" + at(pos + 4));
    out.push_back({static_cast<uint32_t>(pos + 4), key_len, static_cast<uint32_t>(value_at)});
    pos = end;
  }
  return Ok{};
}

}  // namespace

Result<uint32_t> read_prom_db_used(std::span<const uint8_t> bytes) {
  if (bytes.size() < kPromDbHeaderBytes)
    return make_error("file of " + std::to_string(bytes.size()) + " bytes has no 8-byte header",
                      "a file being created is retried next scrape; else it is not a "
                      "prometheus_client .db file");
  const uint32_t used = load_u32(bytes.data());
  if (used < kPromDbHeaderBytes || used > bytes.size())
    return make_error("used size outside [8, " + std::to_string(bytes.size()) + "]" + at(0),
                      "the file is truncated or not a prometheus_client .db file");
  return used;
}

Status extend_prom_db_layout(std::span<const uint8_t> bytes, uint32_t used,
                             PromDbLayout& layout) {
  if (used > bytes.size()) return make_error("used size past the end of the file" + at(0));
  if (used < layout.parsed_to)
    return make_error("used size shrank" + at(0),
                      "prometheus_client never shrinks a file; it was rewritten");
  if (used == layout.parsed_to) return Ok{};
  const size_t kept = layout.entries.size();
  if (layout.value_bytes != 0) {
    Status st = walk_entries(bytes, layout.parsed_to, used, layout.value_bytes, layout.entries);
    if (!st) {
      layout.entries.resize(kept);
      return st;
    }
  } else {
    Status with_value = walk_entries(bytes, layout.parsed_to, used, 8, layout.entries);
    if (with_value) {
      layout.value_bytes = 8;
    } else {
      layout.entries.resize(kept);
      Status with_timestamp = walk_entries(bytes, layout.parsed_to, used, 16, layout.entries);
      if (!with_timestamp) {
        layout.entries.resize(kept);
        return make_error(with_value.error().message + " (reading value only); " +
                              with_timestamp.error().message + " (reading value + timestamp)",
                          "the file is corrupt or not a prometheus_client .db file");
      }
      layout.value_bytes = 16;
    }
  }
  layout.parsed_to = used;
  return Ok{};
}

double load_prom_db_double(const uint8_t* bytes, uint32_t offset) {
  // The writer stores the value with one aligned 8-byte copy; load it the same way (a buffer
  // that is not 8-aligned, e.g. a fuzzer's, is no shared mapping: a plain copy is enough).
  const uint8_t* p = bytes + offset;
  uint64_t raw;
  if (reinterpret_cast<uintptr_t>(p) % 8 == 0)
    raw = __atomic_load_n(reinterpret_cast<const uint64_t*>(p), __ATOMIC_RELAXED);
  else
    std::memcpy(&raw, p, 8);
  double v;
  std::memcpy(&v, &raw, 8);
  return v;
}

Result<PromDbFileName> parse_prom_db_file_name(std::string_view base) {
  auto bad = [&](const char* why) {
    return make_error("file name \"" + std::string(base) + "\": " + why,
                      "prometheus_client names files {type}_{pid}.db or gauge_{mode}_{pid}.db");
  };
  if (base.size() < 4 || base.substr(base.size() - 3) != ".db") return bad("does not end in .db");
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= base.size(); ++i) {
    if (i == base.size() || base[i] == '_') {
      parts.push_back(base.substr(start, i - start));
      start = i + 1;
    }
  }
  PromDbFileName name;
  name.type = std::string(parts[0]);
  const size_t pid_part = name.type == "gauge" ? 2 : 1;
  if (parts.size() <= pid_part) return bad("has no pid part");
  if (name.type == "gauge") name.mode = std::string(parts[1]);
  std::string_view pid = parts[pid_part];
  if (pid_part + 1 == parts.size()) pid.remove_suffix(3);  // ".db" ends the last part
  name.pid = std::string(pid);
  if (name.type.empty()) return bad("has no type");
  return name;
}

PromMultiprocDir parse_prom_multiproc_dir_spec(std::string_view spec) {
  PromMultiprocDir dir;
  if (auto eq = spec.find('='); eq != std::string_view::npos && eq > 0 &&
                                spec.substr(0, eq).find('/') == std::string_view::npos) {
    dir.app = std::string(spec.substr(0, eq));
    spec.remove_prefix(eq + 1);
  }
  dir.path = std::string(spec);
  while (dir.path.size() > 1 && dir.path.back() == '/') dir.path.pop_back();
  return dir;
}

Result<std::vector<PromDbEntry>> parse_prom_db(std::span<const uint8_t> bytes) {
  auto used = read_prom_db_used(bytes);
  if (!used) return used.error();
  PromDbLayout layout;
  if (auto st = extend_prom_db_layout(bytes, *used, layout); !st) return st.error();
  std::vector<PromDbEntry> entries;
  entries.reserve(layout.entries.size());
  for (const auto& e : layout.entries) {
    std::string_view json(reinterpret_cast<const char*>(bytes.data() + e.key_offset), e.key_len);
    auto key = parse_prom_db_key(json);
    if (!key)
      return make_error(key.error().message + at(e.key_offset), key.error().hint);
    PromDbEntry entry{std::move(*key), load_prom_db_double(bytes.data(), e.value_offset), 0};
    if (layout.value_bytes == 16)
      entry.timestamp = load_prom_db_double(bytes.data(), e.value_offset + 8);
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace statherd::agent
