// statherd-server: ingest batches from agents, roll them up per interval, and emit to Graphite
// and the in-memory store. See config/server.yaml and `statherd-server --help`.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>

#include "common/log.h"
#include "common/yaml_util.h"
#include "server/api_routes.h"
#include "server/engine.h"
#include "server/http_server.h"
#include "server/memory_store.h"
#include "server/server_config.h"
#include "server/sinks/graphite.h"
#include "server/sinks/prometheus.h"
#include "server/sinks/prometheus_self.h"
#include "server/sinks/remote_write.h"

namespace {

using namespace statherd;
using namespace statherd::server;

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The remote_write sink when remote_write.url / --remote-write is set (validated already).
std::unique_ptr<RemoteWriteSink> make_remote_write(const ServerConfig& config) {
  if (config.remote_write_url.empty()) return nullptr;
  auto url = parse_remote_write_url(config.remote_write_url);
  if (!url) return nullptr;
  RemoteWriteSinkOptions o;
  o.url = *url;
  o.queue_max_samples = config.remote_write_queue_max_samples;
  o.batch_max_samples = config.remote_write_batch_max_samples;
  o.timeout = config.remote_write_timeout;
  return std::make_unique<RemoteWriteSink>(o);
}

int fail(const Error& error, int code = 2) {
  log::error(error.to_string());
  return code;
}

int serve(const ServerConfig& config, const std::string& token) {
  EngineOptions engine_options = engine_options_from(config);
  if (config.state_dir.empty()) {
    log::warn("no state_dir: the write-ahead log is off, acknowledged batches are lost on a "
              "crash\nhint: pass --state-dir DIR");
  }
  Engine engine(engine_options);
  if (Status s = engine.open(wall_clock_ms()); !s) return fail(s.error(), 1);

  MemoryStore store({std::chrono::duration_cast<std::chrono::seconds>(config.memory_retention),
                     config.memory_max_paths, config.graphite_prefix});
  std::unique_ptr<GraphiteSink> graphite;
  std::vector<Sink*> sinks;
  if (!config.graphite_address.empty()) {
    GraphiteSinkOptions g;
    g.address = config.graphite_address;
    g.prefix = config.graphite_prefix;
    g.queue_max_lines = config.graphite_queue_max_lines;
    g.max_new_series_per_minute = config.graphite_max_new_series_per_minute;
    g.tags = config.graphite_tags;
    g.rules = config.graphite_rules;
    graphite = std::make_unique<GraphiteSink>(g);
    sinks.push_back(graphite.get());
  }
  std::unique_ptr<RemoteWriteSink> remote_write = make_remote_write(config);
  if (remote_write) sinks.push_back(remote_write.get());

  auto listen = parse_host_port(config.listen);
  HttpServerOptions http;
  http.host = listen->host;
  http.port = listen->port;
  http.max_body_bytes = config.max_body_bytes;
  http.handle_signals = true;
  ApiRoutes routes(token, engine, store, wall_clock_ms);
  // GET /metrics: every rolled-up series plus the server's self-metrics.
  PrometheusSink prometheus_sink;
  sinks.push_back(&prometheus_sink);
  ServerSelfMetrics self_metrics;
  routes.set_prometheus_scrape([&] {
    ServerSelfValues values{engine.stats(), store.path_count(), store.refused_paths(),
                            prometheus_sink.counters(), std::nullopt};
    if (graphite) values.graphite = graphite->counters();
    self_metrics.update(values);
    return prometheus_sink.scrape(self_metrics.collect());
  });
  HttpServer server(http, engine, store, sinks, routes, wall_clock_ms);
  if (Status s = server.listen(); !s) return fail(s.error(), 1);
  log::info("listening on " + http.host + ":" + std::to_string(server.port()) + ", interval " +
            std::to_string(config.interval.count()) + " ms" +
            (config.graphite_address.empty() ? "" : ", graphite " + config.graphite_address));
  server.run();  // returns after SIGTERM/SIGINT drained the engine to every sink
  for (Sink* sink : sinks) sink->stop();
  log::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  log::set_program("statherd-server");
  std::signal(SIGPIPE, SIG_IGN);
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
    std::cout << "configuration ok\n";
    return 0;
  }
  return serve(command->config, *token);
}
