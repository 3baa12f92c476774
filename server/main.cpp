// statherd-server: ingest batches from agents, roll them up per interval, and emit to Graphite
// and the in-memory store. See config/server.yaml and `statherd-server --help`.
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/cli.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "common/yaml_util.h"
#include "server/api_routes.h"
#include "server/cluster_coordinator.h"
#include "server/cluster_membership.h"
#include "server/daemon.h"
#include "server/engine.h"
#include "server/heap_tuning.h"
#include "server/http_server.h"
#include "server/ingest_token.h"
#include "server/memory_store.h"
#include "server/pipeline.h"
#include "server/server_config.h"
#include "server/server_runtime.h"
#include "server/sink_set.h"
#include "server/stop_progress.h"

#ifndef STATHERD_TCMALLOC
// glibc's malloc: nothing tuned, and no heap figures (server/huge_heap.cpp defines these with
// tcmalloc): mallinfo2() walks every free chunk of every arena under its lock (0.7 s for 1.6M
// free chunks, measured), too slow for each interval and scrape, and it blocks malloc.
std::string statherd::server::heap_tuning_summary() { return "allocator glibc malloc"; }
std::optional<statherd::server::HeapFigures> statherd::server::heap_figures() {
  return std::nullopt;
}
#endif

namespace {

using namespace statherd;
using namespace statherd::server;

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int fail(const Error& error, int code = 2) {
  log::error(error.to_string());
  return code;
}

// With an etcd section: this server's key under the cluster's prefix, holding what the other
// members and the agents need (docs/CLUSTER.md). etcd unreachable is reported and retried in
// the background, never fatal: the server serves its agents meanwhile.
std::unique_ptr<ClusterCoordinator> make_coordinator(const ServerConfig& config) {
  if (!config.etcd.enabled) return nullptr;
  CoordinatorSettings c;
  c.shards = config.etcd.shards;
  c.replicas = config.etcd.replicas;
  c.interval = config.interval;
  c.dead_after = config.etcd.dead_after;
  c.lead = std::max<std::chrono::milliseconds>(config.etcd.lease_ttl, 2 * config.interval);
  // The rounds run on their own thread (CoordinatorThread), apart from the renewals: a round
  // on a slow etcd only has to end in time to keep the view fresh.
  c.round_budget = std::chrono::duration_cast<std::chrono::milliseconds>(config.etcd.lease_ttl);
  c.lease_ttl = config.etcd.lease_ttl;
  c.keep_superseded = config.late_window;
  return std::make_unique<ClusterCoordinator>(c, config.etcd.prefix(), config.etcd.id);
}

// How many intervals a replica holds for a shard it does not lead (server/shard_gate.h): long
// enough for a takeover (the lease expiring, the next replica's turn, its one-TTL fence, the
// rounds between), with room to spare.
size_t held_intervals(const ServerConfig& config) {
  const int64_t step = std::max<int64_t>(config.interval.count(), 1);
  const int64_t ttl =
      std::chrono::duration_cast<std::chrono::milliseconds>(config.etcd.lease_ttl).count();
  return static_cast<size_t>((4 * ttl + step - 1) / step + 4);
}

nlohmann::json gate_json(const ShardGateStats& s) {
  return {{"held_intervals", s.held_intervals},     {"held_records", s.held_records},
          {"caught_up_records", s.caught_up_records}, {"left_to_leader", s.left_to_leader},
          {"dropped_records", s.dropped_records},   {"not_owned_records", s.not_owned_records}};
}

std::unique_ptr<ClusterMembership> join_cluster(const ServerConfig& config,
                                                ClusterCoordinator* coordinator) {
  if (!config.etcd.enabled) return nullptr;
  MembershipOptions o;
  if (coordinator) {
    o.on_lost = [coordinator] { coordinator->lost(); };
    o.on_renewed = [coordinator](std::chrono::steady_clock::time_point sent) {
      coordinator->renewed(sent);
    };
  }
  o.endpoints = config.etcd.endpoints;
  o.prefix = config.etcd.prefix();
  o.id = config.etcd.id;
  o.lease_ttl = config.etcd.lease_ttl;
  // parse_server_command_line filled and checked the id and the advertise URL.
  o.value = nlohmann::json{{"id", config.etcd.id},
                           {"ingest", config.etcd.advertise},
                           {"started_ms", wall_clock_ms()},
                           {"interval_ms", config.interval.count()},
                           {"version", "0.1.0"}}
                .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  o.call_deadline = std::min<std::chrono::milliseconds>(
      std::chrono::milliseconds(2000),
      std::chrono::duration_cast<std::chrono::milliseconds>(config.etcd.lease_ttl) / 3);
  return std::make_unique<ClusterMembership>(std::move(o));
}

// Once the server listens: the first registration and every renewal on the membership's own
// thread, which logs the outcome; the daemon goes on (serving, handling signals) meanwhile.
std::unique_ptr<CoordinatorThread> start_membership(const ServerConfig& config,
                                                    ClusterMembership* membership,
                                                    ClusterCoordinator* coordinator) {
  if (!membership) return nullptr;
  log::info("cluster: joining " + config.etcd.prefix() + " as " + config.etcd.id +
            ", advertising " + config.etcd.advertise + " (etcd " + config.etcd.endpoints_text +
            ")");
  membership->start_in_background();
  const auto third =
      std::chrono::duration_cast<std::chrono::milliseconds>(config.etcd.lease_ttl) / 3;
  return std::make_unique<CoordinatorThread>(*coordinator, *membership, config.etcd.endpoints,
                                             std::min<std::chrono::milliseconds>(
                                                 std::chrono::milliseconds(2000), third),
                                             third, wall_clock_ms);
}

int serve(const ServerConfig& config, const std::string& token,
          const std::vector<std::string>& args) {
  log::stamp_unless_journal();
  EngineOptions engine_options = engine_options_from(config);
  if (config.state_dir.empty()) {
    log::warn("no state_dir (set to \"\", or no default: no $STATE_DIRECTORY and no $HOME): the "
              "write-ahead log is off, acknowledged batches are lost on a crash\nhint: pass "
              "--state-dir DIR");
  }
  Engine engine(engine_options);
  if (Status s = engine.open(wall_clock_ms()); !s) return fail(s.error(), 1);

  // Checked by validate_server_config(): the tiers resolve.
  auto tiers = resolve_retention(config.memory_retention, config.interval.count() / 1000);
  if (!tiers) return fail(tiers.error());
  MemoryStore store(
      {*tiers, config.memory_max_paths, config.graphite_prefix, config.graphite_tags});
  PrometheusSink prometheus_sink;  // GET /metrics: every rolled-up series
  SinkSet sinks(prometheus_sink);
  sinks.apply(config);

  // Built in one direction, each part given what it uses when it is made, nothing wired
  // afterwards: the runtime (self-metrics, readiness, reloads, which replace the ingest token
  // the routes read), the routes (given the runtime's /metrics and /readyz), the read thread,
  // the pipeline (engine, rollup clock, sinks), the HTTP transport that feeds it, the daemon
  // (signals, reload, the stop order) around both.
  auto listen = parse_host_port(config.listen);
  IngestToken ingest_token(token);
  ServerStatus status;
  ServerRuntime runtime(config, args, engine, store, sinks, ingest_token, status,
                        wall_clock_ms(), heap_figures);
  ApiRoutesOptions routes_options;
  routes_options.reads = config.reads;
  routes_options.readiness = [&] { return runtime.readiness(); };
  routes_options.prometheus_scrape = [&] { return runtime.prepare_scrape(); };
  // With an etcd section: the cluster's maps, written by whichever server coordinates, and
  // GET /api/v1/cluster. The coordinator runs on the membership's thread (join_cluster below).
  std::unique_ptr<ClusterCoordinator> coordinator = make_coordinator(config);
  std::unique_ptr<ClusterMembership> membership = join_cluster(config, coordinator.get());
  // In a cluster, Graphite and remote_write get only the shards this server leads (and the
  // held intervals of those it gains the lead of): server/shard_gate.h.
  std::unique_ptr<ShardGate> gate;
  if (coordinator) {
    gate = std::make_unique<ShardGate>(*coordinator, held_intervals(config));
    sinks.set_gate(gate.get());
  }
  if (coordinator)
    routes_options.cluster = [c = coordinator.get(), m = membership.get(), g = gate.get()] {
      nlohmann::json view = c->view_json(wall_clock_ms());
      const MembershipState state = m->state();
      view["emit"] = gate_json(g->stats());
      view["membership"] = {{"registered", state.registered},
                            {"lease", std::to_string(state.lease)},  // > 2^53
                            {"registrations", state.registrations},
                            {"failures", state.failures},
                            {"last_error", state.last_error.empty()
                                               ? nlohmann::json()
                                               : nlohmann::json(state.last_error)}};
      return view;
    };
  ApiRoutes routes(ingest_token, engine, store, wall_clock_ms, std::move(routes_options));

  boost::asio::thread_pool reads(1);
  boost::asio::post(reads, [] { name_this_thread("reads"); });
  PipelineOptions pipeline_options;
  pipeline_options.now_ms = wall_clock_ms;
  pipeline_options.before_flush = [&](int64_t now_ms) { runtime.ingest_self(now_ms); };
  Pipeline pipeline(pipeline_options, engine, store, {&sinks}, reads, status);
  HttpServerOptions http;
  http.host = listen->host;
  http.port = listen->port;
  http.max_body_bytes = config.max_body_bytes;
  http.max_read_body_bytes = config.max_read_body_bytes;
  http.max_connections = static_cast<uint32_t>(std::min<uint64_t>(config.max_connections, 1u << 20));
  http.idle_timeout = config.connection_idle_timeout;
  HttpServer server(http, pipeline, routes, reads, status);
  if (Status s = server.listen(); !s) return fail(s.error(), 1);
  if (Status s = pipeline.start(); !s) return fail(s.error(), 1);
  log::info("listening on " + http.host + ":" + std::to_string(server.port()) + ", interval " +
            std::to_string(config.interval.count()) + " ms" +
            (config.graphite_address.empty() ? "" : ", graphite " + config.graphite_address) +
            (config.remote_write_url.empty() ? "" : ", remote_write " + config.remote_write_url));
  log::info(heap_tuning_summary());
  std::unique_ptr<CoordinatorThread> rounds =
      start_membership(config, membership.get(), coordinator.get());
  DaemonOptions daemon_options;
  daemon_options.reload = [&] { runtime.reload(); };
  Daemon daemon(daemon_options, pipeline, server, reads);
  daemon.run();   // returns after SIGTERM/SIGINT drained the pipeline to every sink
  if (membership) {
    StopProgress::process().step("leaving the cluster (revoking this server's etcd lease)");
    rounds->stop();  // no round after the lease is gone
    membership->stop();
  }
  StopProgress::process().step("the sinks delivering what they hold (each up to its stop_timeout)");
  sinks.stop();   // a second SIGTERM/SIGINT meanwhile exits at once (see server/daemon.h)
  StopProgress::process().end();
  log::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  log::set_program("statherd-server");
  std::signal(SIGPIPE, SIG_IGN);
  // Until the listener's signal set takes SIGHUP over (when it runs), a reload sent while the
  // server starts (recovering a large WAL) is ignored instead of killing it.
  std::signal(SIGHUP, SIG_IGN);
  auto command = parse_server_command_line(std::vector<std::string>(argv + 1, argv + argc));
  if (!command) return fail(command.error());
  if (command->help) {
    std::cout << server_usage();
    return 0;
  }
  if (command->version) {
    std::cout << "statherd-server 0.1.0\n";
    return 0;
  }
  auto token = read_token_file(command->config.token_file);
  if (!token) return fail(token.error());
  if (command->check_config) {
    std::cout << cli::kConfigOk;
    return 0;
  }
  return serve(command->config, *token, std::vector<std::string>(argv + 1, argv + argc));
}
