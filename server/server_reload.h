// SIGHUP for statherd-server: re-read the command line's --config file (flags still win, as at
// start), check it completely, and only then apply what can change in a running server:
//   - token_file (the token is re-read: rotate it by writing the new token and reloading);
//   - graphite.* and remote_write.* (sinks reconfigured in place, see sink_set.h).
// Everything else (listen, state_dir, interval, late_window, idle_timeout, levels, limits,
// memory) shapes the engine's state or the listener; a change there is reported as needing a
// restart and the running value is kept: a reload never resets rates or drops buffered data.
// A file that does not load or validate changes nothing: the running configuration stays and
// the errors (file:line:col) are logged.
#pragma once

#include <string>
#include <vector>

#include "server/server_config.h"

namespace statherd::server {

// How the memory store names its paths: the Graphite prefix and tags it was started with (it
// keeps them until a restart, however many reloads changed the sink's).
struct StoreNaming {
  std::string prefix;
  bool tags = false;
};

// One line per restart-only key whose value differs: "interval: 10s -> 5s needs a restart;
// keeping 10s". store: the memory store's naming; running's when not given.
std::vector<std::string> restart_only_changes(const ServerConfig& running, const ServerConfig& next,
                                              const StoreNaming* store = nullptr);

// `running` with next's reloadable keys (token_file, graphite.*, remote_write.*).
ServerConfig merge_reloadable(const ServerConfig& running, const ServerConfig& next);

struct ReloadPlan {
  bool ok = false;
  std::string error;                 // when !ok: why (every problem, one per line)
  ServerConfig config;               // when ok: the configuration to run from now on
  std::string token;                 // when ok: the token read from config.token_file
  std::vector<std::string> kept;     // restart-only changes, not applied
};

// Loads and checks the new configuration; applies nothing.
ReloadPlan plan_reload(const std::vector<std::string>& args, const ServerConfig& running,
                       const StoreNaming* store = nullptr);

}  // namespace statherd::server
