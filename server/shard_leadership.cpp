#include "server/shard_leadership.h"

#include <algorithm>
#include <cstdio>

#include "common/log.h"
#include "common/time_floor.h"

namespace statherd::server {

ShardLeadership::ShardLeadership(LeadershipSettings settings, std::string prefix, std::string id)
    : settings_(settings), prefix_(std::move(prefix)), id_(std::move(id)) {}

std::string ShardLeadership::key(const std::string& prefix, uint64_t epoch, uint32_t shard) {
  char tail[48];
  std::snprintf(tail, sizeof tail, "%020llu/%05u", static_cast<unsigned long long>(epoch), shard);
  return prefix + "leaders/" + tail;
}

Status ShardLeadership::tick(etcd::Client& client, const std::vector<cluster::ShardMap>& maps,
                             const std::set<std::string>& registered, int64_t lease,
                             Clock::time_point renewed_at, int64_t now_ms, Clock::time_point now,
                             Clock::time_point give_up_at) {
  renewed(renewed_at);
  const int64_t step = std::max<int64_t>(settings_.interval.count(), 1);
  const cluster::ShardMap* in_force = cluster::map_at(maps, floor_to(now_ms, step));
  // Epochs to lead: the one in force, every later one (written ahead of their start), and
  // those superseded within the late window (their late samples are re-emitted by a leader:
  // when one dies, another replica takes its keys, as in the epoch in force).
  auto successor_of = [&](const cluster::ShardMap& map) {
    const cluster::ShardMap* next = nullptr;
    for (const auto& m : maps)
      if (m.epoch > map.epoch && (!next || m.from_ms < next->from_ms)) next = &m;
    return next;
  };
  std::vector<const cluster::ShardMap*> current;
  for (const auto& m : maps) {
    const cluster::ShardMap* next = successor_of(m);
    if (!in_force || m.epoch >= in_force->epoch ||
        (next && now_ms - next->from_ms <= settings_.keep_superseded.count()))
      current.push_back(&m);
  }

  // Superseded epochs: keys kept for the late window after the next map came in force, then
  // deleted (only if still this server's).
  std::vector<Slot> release;
  {
    std::lock_guard lock(mu_);
    for (const auto& [slot, held] : held_) {
      if (in_force && slot.first >= in_force->epoch) continue;
      const cluster::ShardMap* successor = nullptr;
      for (const auto& m : maps)
        if (m.epoch > slot.first && (!successor || m.from_ms < successor->from_ms)) successor = &m;
      if (successor && now_ms - successor->from_ms > settings_.keep_superseded.count())
        release.push_back(slot);
    }
  }
  for (const Slot& slot : release) {
    if (Clock::now() > give_up_at) return Ok{};  // the rest next round
    auto gone = client.delete_if_value(key(prefix_, slot.first, slot.second), id_);
    if (!gone) return gone.error();
    std::lock_guard lock(mu_);
    held_.erase(slot);
  }

  for (const cluster::ShardMap* map : current) {
    if (Clock::now() > give_up_at) return Ok{};
    if (Status s = take_free(client, *map, maps, registered, lease, now_ms, now, give_up_at); !s) return s;
  }
  return Ok{};
}

Status ShardLeadership::take_free(etcd::Client& client, const cluster::ShardMap& map,
                                  const std::vector<cluster::ShardMap>& maps,
                                  const std::set<std::string>& registered, int64_t lease,
                                  int64_t now_ms, Clock::time_point now,
                                  Clock::time_point give_up_at) {
  auto me = std::find(map.members.begin(), map.members.end(), id_);
  if (me == map.members.end()) return Ok{};
  const uint32_t my_index = static_cast<uint32_t>(me - map.members.begin());
  char epoch_dir[40];
  std::snprintf(epoch_dir, sizeof epoch_dir, "leaders/%020llu/",
                static_cast<unsigned long long>(map.epoch));
  auto holders = client.get_prefix(prefix_ + epoch_dir);
  if (!holders) return holders.error();
  std::map<uint32_t, const etcd::KeyValue*> by_shard;
  const std::string dir = prefix_ + epoch_dir;
  for (const auto& kv : holders->kvs) {
    if (kv.key.size() != dir.size() + 5 || kv.key.rfind(dir, 0) != 0) continue;
    uint32_t shard = 0;
    bool digits = true;
    for (size_t i = dir.size(); i < kv.key.size(); ++i) {
      if (kv.key[i] < '0' || kv.key[i] > '9') digits = false;
      else shard = shard * 10 + static_cast<uint32_t>(kv.key[i] - '0');
    }
    if (digits && shard < map.shards) by_shard[shard] = &kv;
  }
  const auto third = settings_.lease_ttl / 3;
  std::vector<uint32_t> order;  // a shard's replicas, those catching up after the others
  for (uint32_t shard = 0; shard < map.shards; ++shard) {
    const auto& owners = map.owners[shard];
    if (std::find(owners.begin(), owners.end(), my_index) == owners.end()) continue;
    order.assign(owners.begin(), owners.end());
    std::stable_partition(order.begin(), order.end(), [&](uint32_t i) {
      return !catching_up(map.members[i], map, maps);
    });
    auto pos = std::find(order.begin(), order.end(), my_index);
    const Slot slot{map.epoch, shard};
    auto holder = by_shard.find(shard);
    if (holder != by_shard.end()) {
      free_since_.erase(slot);
      const bool mine = holder->second->value == id_ && holder->second->lease == lease;
      std::lock_guard lock(mu_);
      if (!mine && held_.erase(slot))
        log::warn("cluster: lost the lead of shard " + std::to_string(shard) + " of map " +
                  std::to_string(map.epoch) + " to " + etcd::printable(holder->second->value));
      // Ours but not known as ours: a take whose answer was lost (its outcome unknown). Held
      // from now, waiting a TTL like any key taken late.
      if (mine) held_.emplace(slot, Held{now, false});
      continue;
    }
    {
      std::lock_guard lock(mu_);
      held_.erase(slot);  // the key is gone (a lease expired meanwhile): not ours any more
    }
    const auto free_at = free_since_.emplace(slot, now).first->second;
    const size_t rank = static_cast<size_t>(pos - order.begin());
    // Before the epoch starts nobody needs to hurry: only the first replica takes its keys
    // (the others when it is down), so a replica that read the map first does not take the
    // preferred one's shards.
    const bool pending = now_ms < map.from_ms;
    // A member catching up behind a replica that is not waits two TTLs more than its rank
    // (a new member's first rounds can be slow: a CI run saw a restarted replica take a new
    // map's key a third of a TTL after the epoch began, and send a partial first interval).
    const bool behind_ready = rank > 0 && catching_up(id_, map, maps);
    const auto wait = third * static_cast<int64_t>(rank) +
                      (behind_ready ? 2 * settings_.lease_ttl : std::chrono::milliseconds(0));
    bool turn = rank == 0 || (!pending && now - free_at >= wait);
    if (!turn) {
      turn = true;  // every replica before this one is down: no need to wait for them
      for (size_t i = 0; i < rank; ++i)
        if (registered.count(map.members[order[i]])) turn = false;
    }
    if (!turn) continue;
    if (Clock::now() > give_up_at) return Ok{};  // the rest next round
    auto took = client.put_if(key(prefix_, map.epoch, shard), id_, 0, lease);
    if (!took) return took.error();
    if (!took->succeeded) continue;  // another replica was quicker: read next round
    free_since_.erase(slot);
    std::lock_guard lock(mu_);
    held_[slot] = Held{now, now_ms < map.from_ms};
  }
  return Ok{};
}

void ShardLeadership::set_started(std::map<std::string, int64_t> started_ms) {
  started_ms_ = std::move(started_ms);
}

// Back from a restart shortly before (or after) the epoch began, having been a member of a map
// in force before it started: its agents kept batches for it in their spools, still replaying.
bool ShardLeadership::catching_up(const std::string& member, const cluster::ShardMap& map,
                                  const std::vector<cluster::ShardMap>& maps) const {
  auto it = started_ms_.find(member);
  if (it == started_ms_.end() || it->second <= map.from_ms - settings_.settle.count()) return false;
  for (const auto& m : maps)
    if (m.from_ms < it->second && std::find(m.members.begin(), m.members.end(), member) != m.members.end())
      return true;
  return false;
}

bool ShardLeadership::may_emit(uint64_t epoch, uint32_t shard, Clock::time_point now) const {
  std::lock_guard lock(mu_);
  auto it = held_.find({epoch, shard});
  if (it == held_.end()) return false;
  if (now - renewed_at_ >= settings_.lease_ttl / 2) return false;
  return it->second.before_start || now - it->second.taken_at >= settings_.lease_ttl;
}

std::map<uint64_t, std::vector<uint32_t>> ShardLeadership::led() const {
  std::lock_guard lock(mu_);
  std::map<uint64_t, std::vector<uint32_t>> out;
  for (const auto& [slot, held] : held_) out[slot.first].push_back(slot.second);
  return out;
}

void ShardLeadership::renewed(Clock::time_point sent) {
  std::lock_guard lock(mu_);
  renewed_at_ = std::max(renewed_at_, sent);
}

void ShardLeadership::lost() {
  std::lock_guard lock(mu_);
  held_.clear();
}

}  // namespace statherd::server
