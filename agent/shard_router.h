// The agent's side of a cluster (issue #13, docs/CLUSTER.md "Agents"): which servers get each
// sample, and the previous value that lets any of them count a counter's increments.
//
// ShardRouter splits a scraped batch by destination: every sample goes to the replicas of its
// series' shard (series_hash(app, metric, tags) % shards) in the map in force at the sample's
// timestamp, the map the servers use for that interval, so every process's samples of one
// series meet on the same servers. Each destination gets a batch with the batch's seq, agent id
// and source errors, and the samples it owns (a source split across servers keeps its identity
// and flags in each part).
//
// CounterMemory gives each counter the cumulative value this agent read for that series at its
// previous scrape (wire kind 5): the server that gets it counts value - previous whatever state
// it holds, so a series whose shard moved between servers neither loses nor doubles an
// increment. The first read of a series after the agent starts carries none (the server's own
// state counts it, as with one server).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/shard_map.h"
#include "common/wire.h"

namespace statherd::agent {

struct RoutedBatch {
  std::string server;  // a member id of the map
  Batch batch;
};

class ShardRouter {
 public:
  // `maps`: every map known (any order; from etcd, or one built from a static list).
  void set_maps(std::vector<cluster::ShardMap> maps);
  bool has_maps() const { return !maps_.empty(); }
  const std::vector<cluster::ShardMap>& maps() const { return maps_; }

  // One batch per server that owns any sample of `batch` (in member id order). A sample older
  // than every map goes by the first map (the servers count those intervals as its).
  // Error: no map yet (the caller keeps the batch until one is read).
  Result<std::vector<RoutedBatch>> split(const Batch& batch) const;

 private:
  const cluster::ShardMap& map_for(int64_t timestamp_ms) const;
  std::vector<cluster::ShardMap> maps_;  // sorted by epoch
};

class CounterMemory {
 public:
  // A series not read for this many scrapes is forgotten (its next read carries no previous).
  explicit CounterMemory(uint32_t forget_after_scrapes = 10) : forget_after_(forget_after_scrapes) {}

  // Sets `previous` on every counter of `batch` this memory knows, then remembers the values.
  void apply(Batch& batch);
  size_t size() const { return last_.size(); }

 private:
  struct Last {
    double value = 0;
    uint64_t scrape = 0;
  };
  uint32_t forget_after_;
  uint64_t scrape_ = 0;
  std::unordered_map<std::string, Last> last_;
};

}  // namespace statherd::agent
