// libFuzzer target: an answer from etcd's JSON gateway (common/etcd_client.h) is untrusted
// bytes. No parser may crash or throw on it; every base64 text that decodes encodes back to
// itself, and bytes encoded decode back to themselves; a shard map (the JSON kept in etcd)
// either is refused or reads back the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/base64.h"
#include "common/etcd_client.h"
#include "common/shard_map.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  namespace etcd = statherd::etcd;
  (void)etcd::parse_range_answer(bytes);
  (void)etcd::parse_txn_answer(bytes);
  (void)etcd::parse_grant_answer(bytes);
  auto ttl = etcd::parse_keepalive_answer(bytes, 1);
  if (ttl && *ttl <= 0) std::abort();  // a lease without a TTL is gone, never "renewed for 0"
  if (auto decoded = statherd::base64_decode(bytes)) {
    if (statherd::base64_encode(*decoded) != bytes) std::abort();
  }
  // A shard map read from etcd: refused with a message, or one that reads back the same.
  if (auto map = statherd::cluster::map_from_json(bytes, "fuzz")) {
    auto again = statherd::cluster::map_from_json(statherd::cluster::to_json(*map), "fuzz");
    if (!again || again->owners != map->owners || again->members != map->members) std::abort();
  }
  auto back = statherd::base64_decode(statherd::base64_encode(bytes));
  if (!back || *back != bytes) std::abort();
  return 0;
}
