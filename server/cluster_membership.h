// A server's membership of a cluster (issue #13, docs/CLUSTER.md): the key
// `<prefix>members/<id>` in etcd, bound to a lease this server renews, holding what agents and
// the other servers need to reach it. When the server stops, the lease is revoked and the key
// goes at once; when it dies, the key goes when the lease expires (its TTL). A lease lost while
// running (etcd unreachable for longer than the TTL, or etcd restarted from an old backup) is
// granted and the key written again at the next renewal; etcd unreachable is logged (once per
// outage, and when it comes back) and retried, never fatal. Its own thread; not yet wired
// into the daemon (docs/CLUSTER.md, "Order of work").
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/etcd_client.h"
#include "common/result.h"

namespace statherd::server {

struct MembershipOptions {
  std::vector<etcd::Endpoint> endpoints;
  std::string prefix = "/statherd/default/";  // ends with '/'
  std::string id;                             // this server's id, unique in the cluster
  std::string value;                          // what the key holds (JSON: the ingest URL, ...)
  std::chrono::seconds lease_ttl{10};
  std::chrono::milliseconds call_deadline{2000};
  // Called on the membership thread after each good renewal (or registration), with when it
  // was sent: the leaders' fencing reads it (server/shard_leadership.h).
  std::function<void(std::chrono::steady_clock::time_point sent)> on_renewed;
  // Called on the thread that found this server's key gone: its lease expired (before it is
  // granted again) or stop() revoked it. What hung on the lease (the coordinator key) is gone.
  std::function<void()> on_lost;
};

struct MembershipState {
  bool registered = false;  // the key is in etcd under a live lease, as far as we know
  int64_t lease = 0;
  uint64_t registrations = 0;  // times the key was written (1 + re-registrations)
  uint64_t failures = 0;       // etcd calls that failed
  // When the last good renewal was sent (the lease runs at least lease_ttl from then), for
  // fencing (server/shard_leadership.h).
  std::chrono::steady_clock::time_point renewed_at{};
  std::string last_error;
};

class ClusterMembership {
 public:
  explicit ClusterMembership(MembershipOptions options);
  ~ClusterMembership();  // stop()s
  ClusterMembership(const ClusterMembership&) = delete;
  ClusterMembership& operator=(const ClusterMembership&) = delete;

  // Registers (one attempt, so a start-up with etcd down is reported at once) and starts the
  // renewing thread, which retries what failed. The error is the first attempt's: the thread
  // runs anyway.
  Status start();
  // The same, but the first attempt is made on the membership thread too, so the caller never
  // waits for etcd (the daemon: it serves and handles signals meanwhile). Logs its outcome.
  void start_in_background();
  // Revokes the lease (the key goes now) and joins the thread. Idempotent.
  void stop();

  MembershipState state() const;
  std::string key() const { return options_.prefix + "members/" + options_.id; }

 private:
  Status register_now(etcd::Client& client);
  // After a renewal: the key is still there under `lease` (written again if it was deleted
  // while the lease lived; this server steps back if another now holds its id).
  Status check_key(etcd::Client& client, int64_t lease);
  void run(bool failed_at_start, bool attempt_at_once);

  MembershipOptions options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  MembershipState state_;
  std::thread thread_;
};

}  // namespace statherd::server
