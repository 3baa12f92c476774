// statherd-agent: reads stat sources every interval and ships them to statherd-server.
// See agent_config.h for the command line and config/agent.yaml for the keys.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "agent/agent_config.h"
#include "agent/config_warnings.h"
#include "agent/daemon.h"
#include "agent/once_output.h"
#include "agent/once_report.h"
#include "agent/sample_guard.h"
#include "agent/source_registry.h"
#include "agent/status_file.h"
#include "common/cli.h"
#include "common/log.h"

namespace statherd::agent {
namespace {

constexpr const char* kVersion = "statherd-agent 0.1.0";

// --once: every sample as a JSON line on stdout, streamed file by file (nothing of a file is
// kept once its lines are out), from a one-shot source of every configured kind. Exit 1 only if
// sources failed and none worked.
int run_once(const AgentConfig& config) {
  OnceLineWriter out(STDOUT_FILENO);
  std::vector<SourceError> errors;
  std::vector<std::string> searched;
  size_t sources_read = 0;
  Status written = Ok{};
  for (const SourceKind* kind : source_kinds()) {
    if (!kind->configured(config)) continue;
    std::unique_ptr<Source> source = kind->build(config, 0, /*one_shot=*/true);
    searched.push_back(source->describe());
    log::debug("reading " + searched.back());
    try {
      source->scrape_each(wall_ms(), [&](SourceSamples& ss) {
        if (claims_reserved_app(ss, errors)) return true;  // app "self": refused, go on
        ++sources_read;
        if (written) written = out.add(ss);
        return static_cast<bool>(written);
      }, errors);
    } catch (const std::exception& e) {  // a source must not throw; contain it if one does
      errors.push_back({source->describe(), std::string("scrape threw: ") + e.what()});
    }
  }
  if (written) written = out.finish();
  for (const auto& e : errors) log::error(e.source + ": " + without_next_scrape_hint(e.message));
  if (errors.empty() && sources_read == 0) log::warn(nothing_found_message(searched));
  if (!written) {
    log::error(written.error().to_string());
    return 1;
  }
  return !errors.empty() && sources_read == 0 ? 1 : 0;
}

// --status: reads <spool_dir>/status.json of the running agent. Exit 0 alive, 1 stale or not
// running (or no status file), 2 bad configuration.
int run_status(const CommandLine& cli, const AgentConfig& config) {
  auto status = read_status_file(config.spool_dir);
  if (!status) {
    std::fprintf(stdout, "statherd-agent NOT RUNNING: %s\n", status.error().to_string().c_str());
    return 1;
  }
  const int64_t now = wall_ms();
  std::string why;
  const bool alive = status_looks_alive(*status, now, process_exists(status->pid), &why);
  if (cli.json) std::fputs(status_to_json(*status).c_str(), stdout);
  else std::fputs(format_status(*status, now, alive, why).c_str(), stdout);
  return alive ? 0 : 1;
}

int agent_main(int argc, char** argv) {
  log::set_program("statherd-agent");
  auto cli = parse_command_line(argc, argv);
  if (!cli) {  // the problem and a hint to --help, as statherd-server (common/cli.h)
    log::error(cli.error().to_string());
    return statherd::cli::kExitBadUsage;
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
  for (const auto& e : loaded.errors) log::error(e);  // "statherd-agent: error: ..." + hint
  if (cli->mode == CommandLine::Mode::CheckConfig) {
    if (loaded.errors.empty()) {
      for (const std::string& w : config_warnings(loaded.config)) log::warn(w);
      std::fputs(statherd::cli::kConfigOk, stdout);
    }
    return loaded.errors.empty() ? 0 : 2;  // 2: a configuration problem (as at start)
  }
  if (!loaded.errors.empty()) return 2;
  if (cli->mode == CommandLine::Mode::Once) return run_once(loaded.config);
  if (cli->mode == CommandLine::Mode::Status) return run_status(*cli, loaded.config);
  // Hold SIGTERM/SIGINT/SIGHUP from now on: the daemon's signal thread takes them with
  // sigwait once it runs, so a reload or stop sent while the agent starts (systemd considers
  // it started at once) is handled then instead of killing it.
  sigset_t held;
  sigemptyset(&held);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&held, sig);
  pthread_sigmask(SIG_BLOCK, &held, nullptr);
  return run_daemon(*cli, loaded.config);
}

}  // namespace
}  // namespace statherd::agent

int main(int argc, char** argv) { return statherd::agent::agent_main(argc, argv); }
