// statherd-agent: reads stat sources every interval and ships them to statherd-server.
// See agent_config.h for the command line and config/agent.yaml for the keys.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>

#include "agent/agent_config.h"
#include "agent/agent_loop.h"
#include "agent/delivery.h"
#include "agent/once_output.h"
#include "agent/shipper.h"
#include "agent/sources/mmstats_v1.h"
#include "agent/sources/prom_multiproc.h"
#include "agent/sources/prometheus_http.h"
#include "agent/sources/scales_http.h"
#include "agent/sources/statherd_v2.h"
#include "agent/spool.h"
#include "common/log.h"

namespace statherd::agent {
namespace {

constexpr const char* kVersion = "statherd-agent 0.1.0";

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

MmstatsV1Options mmstats_options(const AgentConfig& c, int64_t last_scan_ms) {
  MmstatsV1Options mm;
  mm.globs = c.mmstats_globs;
  if (c.counter_patterns) mm.counter_patterns = *c.counter_patterns;
  mm.host = c.host;
  mm.fresh_if_started_after_ms = last_scan_ms;
  return mm;
}

// prometheus_client multiprocess directories, when configured (one aggregated view each).
void add_prom_multiproc_source(const AgentConfig& c, bool one_shot,
                               std::vector<std::unique_ptr<Source>>& sources) {
  if (c.prom_multiproc_dirs.empty()) return;
  PromMultiprocOptions pm;
  for (const auto& spec : c.prom_multiproc_dirs)
    pm.dirs.push_back(parse_prom_multiproc_dir_spec(spec));
  pm.host = c.host;
  pm.one_shot = one_shot;
  sources.push_back(std::make_unique<PromMultiprocSource>(std::move(pm)));
}

// Scales and Prometheus endpoints, when URLs are configured.
void add_http_sources(const AgentConfig& c, std::vector<std::unique_ptr<Source>>& sources) {
  if (!c.scales_urls.empty())
    sources.push_back(std::make_unique<ScalesHttpSource>(
        ScalesHttpOptions{c.scales_urls, c.scales_counter_patterns, c.scales_timeout,
                          static_cast<size_t>(c.scales_max_bytes), c.host}));
  if (!c.prometheus_urls.empty())
    sources.push_back(std::make_unique<PrometheusHttpSource>(
        PrometheusHttpOptions{c.prometheus_urls, c.prometheus_timeout,
                              static_cast<size_t>(c.prometheus_max_bytes), c.host}));
}

// statherd v2 files: always read (default glob: $STATHERD_DIR or $TMPDIR/statherd).
StatherdV2Options v2_options(const AgentConfig& c, int64_t last_scan_ms, bool one_shot) {
  StatherdV2Options v2;
  v2.globs = c.v2_globs;
  v2.host = c.host;
  v2.fresh_if_started_after_ms = last_scan_ms;
  v2.one_shot = one_shot;
  return v2;
}

std::vector<std::unique_ptr<Source>> make_sources(const AgentConfig& c, int64_t last_scan_ms) {
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(std::make_unique<MmstatsV1Source>(mmstats_options(c, last_scan_ms)));
  sources.push_back(std::make_unique<StatherdV2Source>(v2_options(c, last_scan_ms, false)));
  add_http_sources(c, sources);
  add_prom_multiproc_source(c, /*one_shot=*/false, sources);
  return sources;
}

// --once: every sample as a JSON line on stdout, streamed file by file (nothing of a file is
// kept once its lines are out). Exit 1 only if sources failed and none worked.
int run_once(const AgentConfig& config) {
  MmstatsV1Options mm = mmstats_options(config, 0);
  mm.one_shot = true;
  MmstatsV1Source source(std::move(mm));
  OnceLineWriter out(STDOUT_FILENO);
  std::vector<SourceError> errors;
  size_t sources_read = 0;
  Status written = Ok{};
  try {
    source.scrape_each(wall_ms(), [&](SourceSamples& ss) {
      ++sources_read;
      written = out.add(ss);
      return static_cast<bool>(written);
    }, errors);
  } catch (const std::exception& e) {  // a source must not throw; contain it if one does
    errors.push_back({source.describe(), std::string("scrape threw: ") + e.what()});
  }
  StatherdV2Source v2_source(v2_options(config, 0, /*one_shot=*/true));
  ScrapeReport v2_report;
  v2_source.scrape(wall_ms(), v2_report);
  for (auto& ss : v2_report.sources) {
    ++sources_read;
    if (written) written = out.add(ss);
  }
  for (auto& e : v2_report.errors) errors.push_back(std::move(e));
  std::vector<std::unique_ptr<Source>> http_sources;
  add_http_sources(config, http_sources);
  add_prom_multiproc_source(config, /*one_shot=*/true, http_sources);
  for (auto& http : http_sources) {
    ScrapeReport report;
    http->scrape(wall_ms(), report);
    for (auto& ss : report.sources) {
      ++sources_read;
      if (written) written = out.add(ss);
    }
    for (auto& e : report.errors) errors.push_back(std::move(e));
  }
  if (written) written = out.finish();
  for (const auto& e : errors) log::error(e.source + ": " + e.message);
  if (!written) {
    log::error(written.error().to_string());
    return 1;
  }
  return !errors.empty() && sources_read == 0 ? 1 : 0;
}

// SIGTERM/SIGINT stop the loop; handled by sigwait in a thread, so nothing runs in a handler.
void start_signal_thread(StopSignal& stop) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set, &stop] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGHUP) {
        log::warn("SIGHUP: configuration reload is not implemented yet; restart the agent");
        continue;
      }
      log::info(sig == SIGTERM ? "SIGTERM: stopping" : "SIGINT: stopping");
      stop.request();
      return;
    }
  }).detach();
}

int run_daemon(const AgentConfig& config) {
  auto url = parse_server_url(config.server);
  auto token = read_token_file(config.token_file);
  if (!url || !token) {
    log::error((!url ? url.error() : token.error()).to_string());
    return 2;
  }
  const int64_t started_ms = wall_ms();
  auto spool = Spool::open(config.spool_dir, config.spool_max_bytes, started_ms);
  if (!spool) {
    log::error(spool.error().to_string());
    return 2;
  }
  Spool& sp = **spool;
  if (sp.count() > 0)
    log::info("spool " + sp.dir() + " holds " + std::to_string(sp.count()) +
              " unsent batches; replaying them in order");
  auto sources = make_sources(config, sp.last_scrape_ms());
  HttpBatchSender sender({*url, *token, config.agent_id, config.ship_timeout});
  SpoolDelivery delivery(sp, sender, Backoff(std::chrono::seconds(1), std::chrono::seconds(30),
                                             static_cast<uint64_t>(started_ms) ^ ::getpid()));
  AgentLoopOptions opts{config.agent_id, config.host, config.interval,
                        std::chrono::milliseconds(2'000), started_ms};
  AgentLoop loop(opts, sources, sp, delivery, wall_ms);
  StopSignal stop;
  start_signal_thread(stop);
  log::info("agent " + config.agent_id + " shipping to " + config.server + " every " +
            std::to_string(config.interval.count()) + " ms; spool " + sp.dir());
  loop.run(stop);
  sender.set_timeout(std::min(config.ship_timeout, std::chrono::milliseconds(2'000)));
  loop.flush_on_shutdown();
  return 0;
}

int agent_main(int argc, char** argv) {
  log::set_program("statherd-agent");
  auto cli = parse_command_line(argc, argv);
  if (!cli) {
    log::error(cli.error().to_string());
    std::fputs(usage_text().c_str(), stderr);
    return 2;
  }
  if (cli->mode == CommandLine::Mode::Help) {
    std::fputs(usage_text().c_str(), stdout);
    return 0;
  }
  if (cli->mode == CommandLine::Mode::Version) {
    std::puts(kVersion);
    return 0;
  }
  if (cli->verbose) log::set_level(log::Level::Debug);
  LoadedConfig loaded = load_agent_config(*cli);
  for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.c_str());
  if (cli->mode == CommandLine::Mode::CheckConfig) {
    if (loaded.errors.empty()) std::fprintf(stdout, "configuration OK\n");
    return loaded.errors.empty() ? 0 : 1;
  }
  if (!loaded.errors.empty()) return 2;
  if (cli->mode == CommandLine::Mode::Once) return run_once(loaded.config);
  return run_daemon(loaded.config);
}

}  // namespace
}  // namespace statherd::agent

int main(int argc, char** argv) { return statherd::agent::agent_main(argc, argv); }
