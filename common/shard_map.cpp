#include "common/shard_map.h"

#include "common/etcd_client.h"
#include "common/etcd_config.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace statherd::cluster {

namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;
constexpr uint32_t kMaxShards = 65536;
constexpr size_t kMaxMembers = 1024;  // shards x members scores per map: bounded work

uint64_t fnv(uint64_t h, std::string_view s) {
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= kFnvPrime;
  }
  return h * kFnvPrime;  // the 0 byte that ends each string (its xor changes nothing)
}

uint64_t mix(uint64_t z) {  // splitmix64's finalizer
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The rendezvous score of a member for a shard: higher wins.
uint64_t score(uint64_t member_hash, uint32_t shard) {
  return mix(member_hash ^ mix(static_cast<uint64_t>(shard) + 1));
}

void fill_owners(ShardMap& m) {
  std::vector<uint64_t> hashes;
  hashes.reserve(m.members.size());
  for (const auto& id : m.members) hashes.push_back(fnv(kFnvOffset, id));
  const size_t r = std::min<size_t>(m.replicas, m.members.size());
  m.owners.assign(m.shards, {});
  std::vector<std::pair<uint64_t, uint32_t>> ranked(m.members.size());
  for (uint32_t s = 0; s < m.shards; ++s) {
    for (uint32_t i = 0; i < m.members.size(); ++i) ranked[i] = {score(hashes[i], s), i};
    // Highest score first; equal scores (never seen, but possible) by member order.
    std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(r), ranked.end(),
                      [](const auto& a, const auto& b) {
                        return a.first != b.first ? a.first > b.first : a.second < b.second;
                      });
    auto& owners = m.owners[s];
    for (size_t k = 0; k < r; ++k) owners.push_back(ranked[k].second);
  }
}

}  // namespace

uint64_t series_hash(std::string_view app, std::string_view metric, const Tags& tags) {
  uint64_t h = fnv(fnv(kFnvOffset, app), metric);
  if (tags.size() == 1) {
    h = fnv(fnv(h, tags[0].first), tags[0].second);
  } else if (!tags.empty()) {
    std::vector<const std::pair<std::string, std::string>*> sorted;
    sorted.reserve(tags.size());
    for (const auto& t : tags) sorted.push_back(&t);
    std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return *a < *b; });
    for (const auto* t : sorted) h = fnv(fnv(h, t->first), t->second);
  }
  return mix(h);
}

bool ShardMap::owns(std::string_view member, uint32_t shard) const {
  if (shard >= owners.size()) return false;
  for (uint32_t i : owners[shard])
    if (members[i] == member) return true;
  return false;
}

Result<ShardMap> make_map(uint64_t epoch, int64_t from_ms, uint32_t shards, uint32_t replicas,
                          std::vector<std::string> members) {
  if (shards == 0 || shards > kMaxShards)
    return make_error("shard map: " + std::to_string(shards) + " shards",
                      "shards is 1 to " + std::to_string(kMaxShards) + " (default 64)");
  if (replicas == 0)
    return make_error("shard map: 0 replicas", "replicas is at least 1 (default 2)");
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  if (members.empty()) return make_error("shard map: no member");
  if (members.size() > kMaxMembers)
    return make_error("shard map: " + std::to_string(members.size()) + " members",
                      "a cluster has at most " + std::to_string(kMaxMembers) + " servers");
  if (members.front().empty()) return make_error("shard map: a member with an empty id");
  // Every id is a server's (cluster::valid_name): one junk id in a hand-written map would
  // otherwise be a destination no agent can spool for, and be carried into the next maps.
  for (const auto& id : members)
    if (!valid_name(id))
      return make_error("shard map: member id '" + etcd::printable(id) +
                        "' is not 1 to 64 of A-Z a-z 0-9 _ . -");
  ShardMap m;
  m.epoch = epoch;
  m.from_ms = from_ms;
  m.shards = shards;
  m.replicas = replicas;
  m.members = std::move(members);
  fill_owners(m);
  return m;
}

std::string to_json(const ShardMap& map) {
  nlohmann::json j = {{"epoch", map.epoch},   {"from_ms", map.from_ms},
                      {"shards", map.shards}, {"replicas", map.replicas},
                      {"hash", kShardHash},   {"members", map.members}};
  return j.dump();
}

Result<ShardMap> map_from_json(std::string_view text, const std::string& what) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return make_error(what + ": the shard map is not a JSON object");
  auto field = [&](const char* name) -> const nlohmann::json* {
    auto it = j.find(name);
    return it == j.end() ? nullptr : &*it;
  };
  const auto* hash = field("hash");
  if (hash == nullptr || !hash->is_string() || hash->get<std::string>() != kShardHash)
    return make_error(what + ": the shard map's hash is " + (hash ? hash->dump() : "missing") +
                          ", this version computes \"" + std::string(kShardHash) + "\"",
                      "every agent and server of a cluster must run a version that shares its "
                      "shard hash");
  const auto* epoch = field("epoch");
  const auto* from = field("from_ms");
  const auto* shards = field("shards");
  const auto* replicas = field("replicas");
  const auto* members = field("members");
  if (epoch == nullptr || !epoch->is_number_unsigned())
    return make_error(what + ": the shard map's \"epoch\" is missing or not a whole number >= 0");
  if (from == nullptr || !from->is_number_integer())
    return make_error(what + ": the shard map's \"from_ms\" is missing or not a whole number");
  if (shards == nullptr || !shards->is_number_unsigned() || shards->get<uint64_t>() > kMaxShards)
    return make_error(what + ": the shard map's \"shards\" is missing or not 1 to " +
                      std::to_string(kMaxShards));
  if (replicas == nullptr || !replicas->is_number_unsigned() || replicas->get<uint64_t>() > 1000)
    return make_error(what + ": the shard map's \"replicas\" is missing or not 1 to 1000");
  if (members == nullptr || !members->is_array())
    return make_error(what + ": the shard map's \"members\" is missing or not a list");
  std::vector<std::string> ids;
  for (const auto& m : *members) {
    if (!m.is_string()) return make_error(what + ": a member of the shard map is not a string");
    ids.push_back(m.get<std::string>());
  }
  auto map = make_map(epoch->get<uint64_t>(), from->get<int64_t>(),
                      static_cast<uint32_t>(shards->get<uint64_t>()),
                      static_cast<uint32_t>(replicas->get<uint64_t>()), std::move(ids));
  if (!map) return make_error(what + ": " + map.error().message, map.error().hint);
  return map;
}

const ShardMap* map_at(const std::vector<ShardMap>& maps, int64_t interval_start_ms) {
  const ShardMap* best = nullptr;
  for (const auto& m : maps)
    if (m.from_ms <= interval_start_ms && (best == nullptr || m.epoch > best->epoch)) best = &m;
  return best;
}

}  // namespace statherd::cluster
