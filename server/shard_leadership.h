// Which replica of a shard emits (issue #13, docs/CLUSTER.md "Who emits"): the holder of
// `<prefix>leaders/<epoch>/<shard>`, a key under the holder's membership lease, so it goes
// when that server dies or loses its lease. Each round (on the membership thread, after the
// coordinator's read) a server takes, create if absent, the free keys of the shards it holds in
// the map in force and in every later one: the shard's first replica at once, the k-th once the
// key has been free for k thirds of the lease TTL or every replica before it is unregistered,
// so the preferred replica leads when it is up, and a live leader is never displaced. A member
// back from a restart shortly before an epoch began, or after (its agents' spools for it are
// still replaying: it would emit partial sums), comes after the other replicas in that order.
//
// Fencing: a server may emit a shard's interval only while it holds the key and its lease was
// renewed less than half a TTL ago (a stalled or cut-off leader stops by itself before its
// lease can expire), and, when it took the key after the epoch started, only once a whole TTL
// has passed since (the previous holder's lease has expired by then, so it cannot emit any
// more). Keys of an epoch superseded for longer than keep_superseded (the late window: late
// samples of its intervals are still re-emitted by their leader) are deleted.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/etcd_client.h"
#include "common/result.h"
#include "common/shard_map.h"

namespace statherd::server {

struct LeadershipSettings {
  std::chrono::milliseconds lease_ttl{10'000};
  std::chrono::milliseconds interval{10'000};
  std::chrono::milliseconds keep_superseded{600'000};
  // A member started less than this before an epoch began, having been in a map in force
  // before its start (a restart: its agents' spools for it are still replaying), takes that
  // epoch's keys after the other replicas: long enough for an agent's backoff (2 s at most
  // towards a cluster member) and its replay.
  std::chrono::milliseconds settle{60'000};
};

class ShardLeadership {
 public:
  using Clock = std::chrono::steady_clock;

  ShardLeadership(LeadershipSettings settings, std::string prefix, std::string id);

  // One round. `maps` sorted by epoch; `registered` the member ids now; `renewed_at` when the
  // membership lease `lease` was last renewed (sent); `now_ms` wall clock, `now` steady; no
  // key is taken after `give_up_at` (the round's budget: the rest next round).
  Status tick(etcd::Client& client, const std::vector<cluster::ShardMap>& maps,
              const std::set<std::string>& registered, int64_t lease, Clock::time_point renewed_at,
              int64_t now_ms, Clock::time_point now, Clock::time_point give_up_at);

  // Whether this server may emit `shard` of `epoch` now (the rules above).
  bool may_emit(uint64_t epoch, uint32_t shard, Clock::time_point now) const;
  // The shards this server leads, by epoch.
  std::map<uint64_t, std::vector<uint32_t>> led() const;
  // The membership lease was renewed (sent at `sent`): fencing counts from the latest.
  void renewed(Clock::time_point sent);
  // Each registered member's start (its members/ key's started_ms), before each tick: a
  // member catching up (see catching_up) takes keys after the others.
  void set_started(std::map<std::string, int64_t> started_ms);
  // The membership lease is gone: every key with it.
  void lost();

  // The key of a shard's leader ("<prefix>leaders/<20-digit epoch>/<5-digit shard>").
  static std::string key(const std::string& prefix, uint64_t epoch, uint32_t shard);

 private:
  struct Held {
    Clock::time_point taken_at;
    bool before_start = false;  // taken before the epoch's first interval began
  };
  using Slot = std::pair<uint64_t, uint32_t>;  // epoch, shard

  bool catching_up(const std::string& member, const cluster::ShardMap& map,
                   const std::vector<cluster::ShardMap>& maps) const;
  Status take_free(etcd::Client& client, const cluster::ShardMap& map,
                   const std::vector<cluster::ShardMap>& maps,
                   const std::set<std::string>& registered, int64_t lease, int64_t now_ms,
                   Clock::time_point now, Clock::time_point give_up_at);

  const LeadershipSettings settings_;
  const std::string prefix_, id_;
  std::map<Slot, Clock::time_point> free_since_;  // the round thread's only
  mutable std::mutex mu_;                         // guards what may_emit and led read
  std::map<Slot, Held> held_;
  Clock::time_point renewed_at_{};
  std::map<std::string, int64_t> started_ms_;  // the round thread's only
};

}  // namespace statherd::server
