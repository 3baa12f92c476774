#include "agent/daemon.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "agent/agent_loop.h"
#include "agent/delivery.h"
#include "agent/reload.h"
#include "agent/source_set.h"
#include "agent/cluster_delivery.h"
#include "agent/spool.h"
#include "agent/status_file.h"
#include "common/log.h"

namespace statherd::agent {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

// Signals are handled by sigwait in a thread, so nothing runs in a handler. SIGHUP asks the
// loop to reload between ticks; the first SIGTERM/SIGINT stops the loop (drain), a second one
// exits at once with 1: every batch is spooled before it is shipped, so what was not shipped
// is in the spool for the next start, and a half-written spool file is a temp file that the
// next start removes.
void start_signal_thread(StopSignal& stop) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set, &stop] {
    bool stopping = false;
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGHUP) {
        if (stopping)
          log::info("SIGHUP while stopping: ignored");
        else
          stop.request_reload();
        continue;
      }
      const std::string name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
      if (stopping) {
        log::warn(name + " again: exiting now (exit code 1); unsent batches stay in the spool");
        ::_exit(1);
      }
      stopping = true;
      log::info(name + ": stopping (reading once more, shipping for up to 2 s; send " + name +
                " again to exit at once)");
      stop.request();
    }
  }).detach();
}

// Everything the status file shows; the loop thread calls this after each tick and reload.
struct StatusWriter {
  const CommandLine& cli;
  const AgentConfig& running;
  const Spool& spool;
  const SpoolDelivery& delivery;
  const ReloadableSender& sender;
  int64_t started_ms;
  const ClusterDelivery* cluster = nullptr;  // in a cluster: the servers' spools
  bool failed_before = false;

  AgentStatus collect(const AgentLoop& loop, const char* state) const {
    AgentStatus s;
    s.state = state;
    s.pid = ::getpid();
    s.started_ms = started_ms;
    s.config_file = cli.config_file;
    s.host = running.host;
    s.agent_id = running.agent_id;
    s.server = running.etcd.enabled ? "etcd " + running.etcd.endpoints_text + " (cluster " +
                                          running.etcd.cluster + ")"
                                    : running.server;
    s.interval_ms = loop.interval().count();
    s.last_tick_ms = loop.last_tick_ms();
    s.written_ms = wall_ms();
    s.sources = loop.last_scrape();
    s.spool_batches = spool.count();
    s.spool_bytes = spool.bytes();
    s.spool_dropped_batches = spool.dropped_batches();
    s.quarantine_dir = spool.quarantine().dir();
    s.quarantine_batches = spool.quarantine().count();
    s.quarantine_bytes = spool.quarantine().bytes();
    s.quarantined_total = delivery.stats().quarantined;
    s.quarantine_dropped = spool.quarantine().dropped();
    if (const ShipResult* r = sender.last_result()) {
      s.ship_last_result = ship_outcome_name(r->outcome);
      s.ship_last_detail = r->detail.substr(0, 200);
      s.ship_last_ms = sender.last_ms();
    }
    s.acked_batches = delivery.stats().acked;
    s.failed_attempts = delivery.stats().failed_attempts;
    s.replayed_batches = loop.counters().replayed_batches;
    s.split_batches = delivery.stats().split_batches;
    s.unauthorized = delivery.stats().unauthorized;
    s.reloads_ok = loop.counters().reloads_ok;
    s.reloads_failed = loop.counters().reloads_failed;
    if (loop.last_reload_ms() > 0) {
      s.reload_last_result = loop.last_reload().ok ? "ok" : "failed";
      s.reload_last_message = loop.last_reload().message;
      s.reload_last_ms = loop.last_reload_ms();
    }
    if (cluster)
      for (const DestinationStatus& d : cluster->status())
        s.servers.push_back({d.id, d.url, d.batches, d.bytes, d.dropped, d.acked, d.failed_attempts});
    return s;
  }

  // A failure is logged when it starts and when it ends, not every tick.
  void write(const AgentLoop& loop, const char* state) {
    Status st = write_status_file(spool.dir(), collect(loop, state));
    if (!st && !failed_before) log::warn("status file: " + st.error().to_string());
    if (st && failed_before) log::info("status file written again");
    failed_before = !st;
  }
};

}  // namespace

int run_daemon(const CommandLine& cli, AgentConfig config) {
  log::stamp_unless_journal();
  auto url = parse_server_url(config.server);
  auto token = read_token_file(config.token_file);
  if (!url || !token) {
    log::error((!url ? url.error() : token.error()).to_string());
    return 2;
  }
  const int64_t started_ms = wall_ms();
  auto spool = Spool::open(config.spool_dir, config.spool_max_bytes, started_ms);
  if (!spool) {  // the config check passed (exit 2 otherwise): a runtime failure, exit 1
    log::error(spool.error().to_string());
    return 1;
  }
  Spool& sp = **spool;
  if (sp.count() > 0)
    log::info("spool " + sp.dir() + " holds " + std::to_string(sp.count()) +
              " unsent batches; replaying them in order");
  SourceSet sources(config, sp.last_scrape_ms());
  ReloadableSender sender({*url, *token, config.agent_id, config.ship_timeout}, wall_ms);
  const uint64_t seed = static_cast<uint64_t>(started_ms) ^ ::getpid();
  // In a cluster, the agent's spool is "delivered" into one spool per server (routed by the
  // shard maps read from etcd), each shipped on its own: agent/cluster_delivery.h.
  std::unique_ptr<MapWatcher> watcher;
  std::unique_ptr<ClusterDelivery> cluster;
  if (config.etcd.enabled) {
    watcher = std::make_unique<MapWatcher>(config.etcd.endpoints, config.etcd.prefix(),
                                           std::chrono::seconds(2));
    cluster = std::make_unique<ClusterDelivery>(
        ClusterDeliveryOptions{sp.dir(), config.spool_max_bytes, *token, config.agent_id,
                               config.ship_timeout, static_cast<size_t>(config.max_batch_bytes),
                               seed, sp.stride_from(),
                               "etcd " + config.etcd.endpoints_text + " under " +
                                   config.etcd.prefix()},
        [w = watcher.get()](int64_t ms) {
          return ms == 0 ? w->view() : w->view_after(ms, std::chrono::seconds(2));
        });
    if (Status s = cluster->open(); !s) {
      log::error(s.error().to_string());
      return 1;
    }
  }
  BatchSender& first_hop = cluster ? static_cast<BatchSender&>(*cluster) : sender;
  SpoolDelivery delivery(sp, first_hop,
                         cluster ? Backoff(std::chrono::milliseconds(500), std::chrono::seconds(2), seed)
                                 : Backoff(std::chrono::seconds(1), std::chrono::seconds(30), seed));
  delivery.set_max_send_bytes(static_cast<size_t>(config.max_batch_bytes));
  if (cluster)
    delivery.set_unreachable_hint("the agent routes by the shard maps in etcd (etcd.endpoints " +
                                  config.etcd.endpoints_text + "): is etcd reachable, and has a "
                                  "server written a map (curl SERVER/api/v1/cluster)?");
  StatusWriter status{cli, config, sp, delivery, sender, started_ms, cluster.get()};
  AgentLoopOptions opts{config.agent_id, config.host, config.interval,
                        std::chrono::milliseconds(2'000), started_ms};
  opts.reload = [&](AgentLoop& loop) {
    return reload_agent({cli, config, sources, sender, loop}, sp.last_scrape_ms());
  };
  opts.after_tick = [&](const AgentLoop& loop) { status.write(loop, "running"); };
  if (cluster)
    opts.also_drain = [c = cluster.get()](SteadyClock::time_point deadline, bool ignore_backoff) {
      return c->drain(deadline, ignore_backoff);
    };
  AgentLoop loop(std::move(opts), sources.sources(), sp, delivery, wall_ms);
  // Reachable for the whole process life: the signal thread outlives this function.
  static StopSignal* const stop = new StopSignal;
  start_signal_thread(*stop);
  status.write(loop, "running");
  log::info("agent " + config.agent_id + " shipping to " +
            (cluster ? "the servers of the shard maps in etcd " + config.etcd.endpoints_text +
                           " (cluster " + config.etcd.cluster + ")"
                     : config.server) +
            " every " + std::to_string(config.interval.count()) + " ms; spool " + sp.dir());
  loop.run(*stop);
  sender.set_timeout(std::min(config.ship_timeout, std::chrono::milliseconds(2'000)));
  if (cluster) cluster->set_timeout(std::min(config.ship_timeout, std::chrono::milliseconds(2'000)));
  loop.flush_on_shutdown();
  status.write(loop, "stopped");
  log::info("stopped");  // the last line, as the server's
  return 0;
}

}  // namespace statherd::agent
