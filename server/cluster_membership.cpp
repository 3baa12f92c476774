#include "server/cluster_membership.h"

#include "common/log.h"
#include "common/thread_name.h"

namespace statherd::server {

ClusterMembership::ClusterMembership(MembershipOptions options) : options_(std::move(options)) {}

ClusterMembership::~ClusterMembership() {
  stop();
}

Status ClusterMembership::register_now(etcd::Client& client) {
  const auto sent = std::chrono::steady_clock::now();
  auto lease = client.grant(options_.lease_ttl.count());
  if (!lease) return lease.error();
  // Create if absent: a second server given the same id (or this one restarted while its
  // previous run's key still lives, up to one TTL) must not take over the first one's key.
  auto put = client.put_if(key(), options_.value, 0, lease->id);
  if (!put || !put->succeeded) {
    (void)client.revoke(lease->id);  // best effort: it expires anyway
    if (!put) return put.error();
    const int64_t holder = put->current.empty() ? 0 : put->current[0].lease;
    return make_error("the id " + options_.id + " is held by another member (" + key() +
                          ", lease " + std::to_string(holder) + ")",
                      "another server with this etcd.id, or this server's previous run until "
                      "its lease expires (at most etcd.lease_ttl); give each server its own id");
  }
  {
    std::lock_guard lock(mu_);
    state_.registered = true;
    state_.lease = lease->id;
    state_.renewed_at = sent;
    ++state_.registrations;
  }
  if (options_.on_renewed) options_.on_renewed(sent);
  return Ok{};
}

Status ClusterMembership::start() {
  etcd::Client client(options_.endpoints, options_.call_deadline);
  Status first = register_now(client);
  if (first) {
    log::info("cluster: registered as " + key() + " at " + client.where());
  } else {
    std::lock_guard lock(mu_);
    ++state_.failures;
    state_.last_error = first.error().message;
  }
  thread_ = std::thread([this, failed = !first.ok()] { run(failed, false); });
  return first;
}

void ClusterMembership::start_in_background() {
  thread_ = std::thread([this] { run(false, true); });
}

Status ClusterMembership::check_key(etcd::Client& client, int64_t lease) {
  auto got = client.get(key());
  if (!got) return got.error();
  if (!got->kvs.empty() && got->kvs[0].lease == lease) return Ok{};
  if (got->kvs.empty()) {  // deleted by hand (or a restored etcd backup): written again
    auto put = client.put_if(key(), options_.value, 0, lease);
    if (!put) return put.error();
    if (put->succeeded) {
      log::warn("cluster: " + key() + " had been deleted while its lease lived; written again");
      return Ok{};
    }
  }
  // Another server holds this id now: this one steps back and waits until that key goes.
  (void)client.revoke(lease);
  {
    std::lock_guard lock(mu_);
    state_.registered = false;
  }
  if (options_.on_lost) options_.on_lost();
  return make_error("the id " + options_.id + " is held by another member (" + key() + ")",
                    "another server with this etcd.id; give each server its own id");
}

void ClusterMembership::run(bool failed_at_start, bool attempt_at_once) {
  name_this_thread("cluster");
  etcd::Client client(options_.endpoints, options_.call_deadline);
  // Renew three times per TTL: two renewals may fail (a slow etcd) before the lease expires.
  const auto period = std::chrono::duration_cast<std::chrono::milliseconds>(options_.lease_ttl) / 3;
  bool outage = failed_at_start;  // its warning was the caller's to give
  // Renewals are scheduled from when the previous one was sent, not from when the round after
  // it ended: a slow etcd lengthens the round, never the gap between two renewals beyond it.
  auto next = std::chrono::steady_clock::now();
  if (!attempt_at_once) next += period;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_until(lock, next, [this] { return stopping_; });
    if (stopping_) break;
    next = std::chrono::steady_clock::now() + period;
    const bool registered = state_.registered;
    const int64_t lease = state_.lease;
    lock.unlock();
    Status done = Ok{};
    bool registered_now = false;
    if (registered) {
      const auto sent = std::chrono::steady_clock::now();
      auto ttl = client.keep_alive(lease);
      if (ttl) {
        {
          std::lock_guard relock(mu_);
          if (state_.lease == lease) state_.renewed_at = sent;
        }
        if (options_.on_renewed) options_.on_renewed(sent);
        done = check_key(client, lease);
      } else if (etcd::lease_expired(ttl.error())) {
        log::warn("cluster: the lease of " + key() + " expired; registering again");
        {
          std::lock_guard relock(mu_);
          state_.registered = false;
        }
        if (options_.on_lost) options_.on_lost();
        done = register_now(client);
        registered_now = done.ok();
      } else {
        done = ttl.error();
      }
    } else {
      done = register_now(client);
      registered_now = done.ok();
    }
    if (registered_now) log::info("cluster: registered as " + key() + " at " + client.where());
    lock.lock();
    if (!done) {
      ++state_.failures;
      state_.last_error = done.error().message;
      if (!outage)
        log::warn("cluster: " + done.error().to_string() + "\n(retrying every " +
                  std::to_string(period.count()) + " ms; this server serves its agents meanwhile)");
      outage = true;
    } else {
      if (outage && !registered_now)
        log::info("cluster: etcd answers again; " + key() + " is registered");
      outage = false;
      state_.last_error.clear();
    }
  }
}

void ClusterMembership::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  int64_t lease = 0;
  {
    std::lock_guard lock(mu_);
    if (state_.registered) lease = state_.lease;
    state_.registered = false;
  }
  if (options_.on_lost) options_.on_lost();
  if (lease != 0) {
    etcd::Client client(options_.endpoints, options_.call_deadline);
    if (Status s = client.revoke(lease); s)
      log::info("cluster: left (" + key() + " removed)");
    else
      log::warn("cluster: could not revoke the lease of " + key() + " (" + s.error().message +
                "); it goes when the lease expires");
  }
}

MembershipState ClusterMembership::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

}  // namespace statherd::server
