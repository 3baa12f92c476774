// The cluster's shard map (issue #13, docs/CLUSTER.md): which servers hold which series. A
// series' shard comes from a hash of its series key (app, metric, tags in any order), so every
// process's and host's samples of one series meet on one shard and the host- and app-level
// rollups stay exact. Each shard's R replicas are the R members with the highest rendezvous
// score for it, so a member joining or leaving moves only the shards it gains or loses.
// Agents and servers compute the same owners from the same map: the hash and the score are
// fixed here, byte for byte, and a map names the hash it was made with.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/sample.h"

namespace statherd::cluster {

// The hash scheme's name, written into every map; a map naming another is refused.
inline constexpr std::string_view kShardHash = "fnv1a64-mix/1";

// FNV-1a 64 over app, metric and the tags sorted by key then value, each string followed by a
// 0 byte, then a 64-bit finalizer (splitmix64's). The same for any order of `tags`.
uint64_t series_hash(std::string_view app, std::string_view metric, const Tags& tags);
inline uint32_t shard_of(uint64_t series_hash, uint32_t shards) {
  return static_cast<uint32_t>(series_hash % shards);
}

struct ShardMap {
  uint64_t epoch = 0;
  int64_t from_ms = 0;   // the first interval start (ms since the epoch) it applies to
  uint32_t shards = 64;  // fixed for a cluster's life
  uint32_t replicas = 2;
  std::vector<std::string> members;  // server ids, sorted, unique
  // Per shard, the indexes into `members` of its replicas, the preferred one (highest score)
  // first; min(replicas, members) of them. Computed from the fields above.
  std::vector<std::vector<uint32_t>> owners;

  // Whether `member` holds a replica of `shard`.
  bool owns(std::string_view member, uint32_t shard) const;
};

// The map of these members (any order; duplicates dropped). Errors: no member, more than
// 1024, an id that is not a valid_name (common/etcd_config.h), shards outside 1..65536,
// replicas 0.
Result<ShardMap> make_map(uint64_t epoch, int64_t from_ms, uint32_t shards, uint32_t replicas,
                          std::vector<std::string> members);

// {"epoch":..,"from_ms":..,"shards":..,"replicas":..,"hash":"fnv1a64-mix/1","members":[...]}:
// the owners are not written, every reader computes them.
std::string to_json(const ShardMap& map);
// `what` names the source in errors ("etcd key /statherd/a/maps/00000007").
Result<ShardMap> map_from_json(std::string_view text, const std::string& what);

// Of `maps` (any order), the one in force for an interval starting at `interval_start_ms`: the
// highest epoch whose from_ms is at or before it. nullptr when none is.
const ShardMap* map_at(const std::vector<ShardMap>& maps, int64_t interval_start_ms);

}  // namespace statherd::cluster
