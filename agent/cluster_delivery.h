// The agent in a cluster (issue #13, docs/CLUSTER.md "Agents"), with an `etcd:` section in its
// file: it reads the shard maps and the servers' ingest URLs from etcd, splits every batch by
// the servers that own each sample's shard (agent/shard_router.h), and keeps one spool per
// server (<spool_dir>/servers/<id>/), each delivered on its own: a dead server's batches wait in
// its spool and replay, in order, when it returns, while the live ones keep receiving theirs.
//
// The agent's own spool stays the first stop: every batch is written there, then "sent" to a
// ClusterDelivery, which routes it into the servers' spools (durably) and acknowledges it. A
// batch scraped before any map is read waits in the agent's spool (503-like, retried).
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/delivery.h"
#include "agent/shard_router.h"
#include "agent/shipper.h"
#include "agent/spool.h"
#include "common/etcd_client.h"
#include "common/shard_map.h"

namespace statherd::agent {

// What the agent reads from etcd: the maps and each member's ingest URL.
struct ClusterView {
  std::vector<cluster::ShardMap> maps;
  std::map<std::string, std::string> ingest;  // member id -> URL (members seen so far)
  // Wall clock (ms) just before the read began: every map written before then is in `maps`.
  int64_t read_ms = 0;
};

// Parses etcd's `maps/` and `members/` answers under `prefix` (keys it cannot read are skipped
// and named in `problems`).
ClusterView parse_cluster_view(const std::string& prefix, const etcd::RangeResult& maps,
                               const etcd::RangeResult& members, std::vector<std::string>& problems);

// Reads the maps and members every `period` on a thread of its own.
class MapWatcher {
 public:
  MapWatcher(std::vector<etcd::Endpoint> endpoints, std::string prefix,
             std::chrono::milliseconds period);
  ~MapWatcher();
  MapWatcher(const MapWatcher&) = delete;
  MapWatcher& operator=(const MapWatcher&) = delete;

  // The last view read (members once seen are kept: a dead server's URL is still needed to
  // replay its spool when it returns). nullopt until etcd answered once.
  std::optional<ClusterView> view() const;
  // Reads once now (tests; the thread does this every period).
  void read_now();
  // A view read at or after wall clock `ms`: the last one if it is, else one read now (the
  // thread is asked to read at once), waiting up to `timeout`; nullopt if none came.
  std::optional<ClusterView> view_after(int64_t ms, std::chrono::milliseconds timeout);
  void stop();

 private:
  void run();
  etcd::Client client_;
  const std::string prefix_;
  const std::chrono::milliseconds period_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable read_done_;
  bool stopping_ = false;
  bool nudged_ = false;
  std::optional<ClusterView> view_;
  std::string last_error_;
  std::set<std::string> reported_;
  std::thread thread_;
};

struct ClusterDeliveryOptions {
  std::string spool_dir;  // the agent's; the servers' spools are <spool_dir>/servers/<id>/
  uint64_t spool_max_bytes = 256ull << 20;  // each server's spool
  std::string token;
  std::string agent_id;
  std::chrono::milliseconds ship_timeout{5'000};
  size_t max_send_bytes = SIZE_MAX;
  uint64_t seed = 0;  // backoff jitter
  uint64_t stride_from = 0;  // the agent's spool's (Spool::stride_from): the windows of its seqs
  std::string etcd_where;    // for messages: "etcd http://... under /statherd/<cluster>/"
};

struct DestinationStatus {
  std::string id, url;
  size_t batches = 0;
  uint64_t bytes = 0, dropped = 0, acked = 0, failed_attempts = 0;
};

class ClusterDelivery : public BatchSender {
 public:
  // `view` gives the maps and URLs (a MapWatcher's view(), or a test's).
  // `view(ms)`: the maps and URLs read at or after wall clock ms (MapWatcher::view_after; 0:
  // any), nullopt when there is none.
  ClusterDelivery(ClusterDeliveryOptions options,
                  std::function<std::optional<ClusterView>(int64_t ms)> view);
  ~ClusterDelivery() override;

  // Opens the servers' spools left by a previous run (replayed once their URL is known).
  Status open();
  // Routes one batch of the agent's spool into the servers' spools: Acked once each part is
  // stored, RetryLater when no map is known yet, when the maps were last read before the
  // batch's newest sample (a map written meanwhile could apply to it: every map is written at
  // least a lease_ttl and two intervals before it applies), or when a store failed.
  ShipResult send(uint64_t seq, std::string_view encoded_batch) override;
  // Ships every server's spool (each oldest first, with its own backoff) until `deadline`.
  // True when they are all empty.
  bool drain(SteadyClock::time_point deadline, bool ignore_backoff = false);
  void set_timeout(std::chrono::milliseconds timeout);

  std::vector<DestinationStatus> status() const;

 private:
  struct Destination;
  Result<Destination*> destination(const std::string& id);
  void refresh_urls(const ClusterView& view);

  ClusterDeliveryOptions options_;
  std::function<std::optional<ClusterView>(int64_t ms)> view_;
  ShardRouter router_;
  CounterMemory memory_;
  // The parts of the last batch routed, kept until every part is stored: a retry of that
  // batch stores the same parts (the counter memory must see each batch once).
  uint64_t pending_seq_ = 0;
  std::vector<RoutedBatch> pending_;
  std::map<std::string, std::unique_ptr<Destination>> destinations_;
};

}  // namespace statherd::agent
