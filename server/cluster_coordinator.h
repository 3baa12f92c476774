// The cluster's coordinator (issue #13, docs/CLUSTER.md): one server at a time, the holder of
// `<prefix>coordinator` under its membership lease, writes the shard maps `<prefix>maps/<epoch>`
// when the membership changes. Every server runs a ClusterCoordinator on a thread of its
// own (CoordinatorThread, every third of the lease TTL): each tick reads the members and the maps (the
// view GET /api/v1/cluster shows), takes the coordinator key if nobody holds it, and, holding
// it, writes the next map when MapPlanner says so. A map is written create-if-absent, so two
// servers that both believe they coordinate (a lease expiring meanwhile) cannot both write one
// epoch; maps are never changed once written.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/etcd_client.h"
#include "common/shard_map.h"
#include "server/cluster_membership.h"
#include "server/shard_gate.h"
#include "server/shard_leadership.h"

namespace statherd::server {

struct CoordinatorSettings {
  uint32_t shards = 64;    // etcd.shards: the first map's; later maps keep the cluster's
  uint32_t replicas = 2;   // etcd.replicas: likewise
  std::chrono::milliseconds interval{10'000};  // the rollup interval: maps start on its boundaries
  // A map member absent from members/ this long is left out of the next map; within it, a
  // restarted server keeps its shards (its replica serves meanwhile).
  std::chrono::milliseconds dead_after{60'000};
  // A new map applies from the first interval boundary at least this far ahead (and at least
  // two intervals), so every server and agent has read it before it applies.
  std::chrono::milliseconds lead{10'000};
  // A round stops before its next etcd call once it has taken this long (statherd-server:
  // etcd.lease_ttl), the rest at the next round, so the view never lags far behind.
  std::chrono::milliseconds round_budget{3'000};
  std::chrono::milliseconds lease_ttl{10'000};        // for the leaders' fencing
  std::chrono::milliseconds keep_superseded{600'000};  // the late window
};

// What map comes next, from the maps written so far and who is registered now. Pure but for
// the absences it remembers between calls (since when each map member has been missing).
class MapPlanner {
 public:
  explicit MapPlanner(CoordinatorSettings settings) : settings_(settings) {}

  // `maps`: every valid map in etcd (any order); `registered`: the ids under members/ now.
  // The next map (epoch = the highest written + 1), or nothing when the members are the same.
  std::optional<cluster::ShardMap> plan(const std::vector<cluster::ShardMap>& maps,
                                        const std::set<std::string>& registered, int64_t now_ms,
                                        uint64_t highest_epoch_seen = 0);
  // The first interval boundary a map written at now_ms after `latest_from_ms` may apply from.
  int64_t next_from_ms(int64_t now_ms, int64_t latest_from_ms) const;

  const std::map<std::string, int64_t>& absent_since() const { return absent_since_; }

 private:
  CoordinatorSettings settings_;
  std::map<std::string, int64_t> absent_since_;
};

class ClusterCoordinator : public EmitViews {
 public:
  ClusterCoordinator(CoordinatorSettings settings, std::string prefix, std::string id);

  // One round (on the CoordinatorThread, while registered under `lease`): read, take the
  // coordinator key if free, write the next map if coordinating. Errors are logged (once until
  // the next success) and the round ends; the next one tries again.
  // Then the shards' leader keys (server/shard_leadership.h); `renewed_at`: when the lease
  // was last renewed.
  void tick(etcd::Client& client, int64_t lease, int64_t now_ms,
            std::chrono::steady_clock::time_point renewed_at = std::chrono::steady_clock::now());

  // This server's key is gone (ClusterMembership's on_lost): so is its coordinator key.
  void lost();

  // GET /api/v1/cluster: this server, the members, the coordinator, the maps (epoch, from_ms,
  // members), the map in force now and the shards this server holds in it.
  nlohmann::json view_json(int64_t now_ms) const;
  // The maps read last (tests).
  std::vector<cluster::ShardMap> maps() const;
  bool coordinating() const;
  const ShardLeadership& leadership() const { return leadership_; }
  // ClusterMembership's on_renewed: the leaders' fencing counts from the latest renewal, not
  // from the last round's view of it (up to a round period older).
  void renewed(std::chrono::steady_clock::time_point sent) { leadership_.renewed(sent); }

  // EmitViews (server/shard_gate.h), for the sinks on the pipeline thread: the map in force for
  // an interval (before the first map's from_ms: the first map), each shard's role for this
  // server, and what the other servers that led it emitted (etcd's
  // `emitted/<epoch>/<shard>/<id>`, read each round). This server's own progress (emitted())
  // is written to its own key at the next round.
  std::optional<EmitView> view_at(int64_t interval_start_ms,
                                  std::chrono::steady_clock::time_point now) const override;
  std::optional<EmitView> view_at(int64_t interval_start_ms) const {
    return view_at(interval_start_ms, std::chrono::steady_clock::now());
  }
  void emitted(uint64_t epoch, const std::vector<uint32_t>& shards,
               int64_t interval_start_ms) override;
  // "<prefix>emitted/<20-digit epoch>/<5-digit shard>/<writer id>"
  static std::string emitted_key(const std::string& prefix, uint64_t epoch, uint32_t shard,
                                 const std::string& writer);

 private:
  Status round(etcd::Client& client, int64_t lease, int64_t now_ms,
               std::chrono::steady_clock::time_point renewed_at);
  Status write_map(etcd::Client& client, cluster::ShardMap next);
  // Reads every emitted/ key, writes this server's progress where it is ahead, and (the
  // coordinator) deletes those of epochs superseded for longer than the late window.
  Status sync_emitted(etcd::Client& client, int64_t now_ms);

  const std::string prefix_, id_;
  MapPlanner planner_;  // the membership thread's only
  CoordinatorSettings settings_;
  ShardLeadership leadership_;
  mutable std::mutex mu_;  // guards the view below
  std::map<std::string, nlohmann::json> members_;
  std::vector<cluster::ShardMap> maps_;
  std::string coordinator_;
  bool coordinating_ = false;
  std::string last_error_;
  int64_t last_round_ms_ = 0;  // when a round last read etcd (0: never)
  std::set<std::string> bad_keys_;  // logged once each
  using Slot = std::pair<uint64_t, uint32_t>;  // epoch, shard
  std::map<Slot, int64_t> markers_;   // the other servers' emitted/ marks at the last round
  std::map<Slot, int64_t> progress_;  // what this server's sinks were handed
};

// Runs a coordinator's rounds on a thread of its own, one every `period` while `membership`
// is registered (with its lease and last renewal), so a slow etcd lengthens the rounds, never
// the gap between two renewals of the membership lease. stop() before the membership stops.
class CoordinatorThread {
 public:
  CoordinatorThread(ClusterCoordinator& coordinator, const ClusterMembership& membership,
                    std::vector<etcd::Endpoint> endpoints, std::chrono::milliseconds call_deadline,
                    std::chrono::milliseconds period, std::function<int64_t()> now_ms);
  ~CoordinatorThread();
  CoordinatorThread(const CoordinatorThread&) = delete;
  CoordinatorThread& operator=(const CoordinatorThread&) = delete;
  void stop();

 private:
  void run();
  ClusterCoordinator& coordinator_;
  const ClusterMembership& membership_;
  etcd::Client client_;
  const std::chrono::milliseconds period_;
  const std::function<int64_t()> now_ms_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace statherd::server
