// Where a daemon keeps its state when the configuration names no directory (the agent's spool,
// the server's write-ahead log), in this order:
//   1. $STATE_DIRECTORY, set by systemd for a unit with StateDirectory= (the first entry when
//      the unit names several, separated by ':');
//   2. /var/lib/<name> when running as root;
//   3. $XDG_STATE_HOME/<name>, XDG_STATE_HOME defaulting to $HOME/.local/state (an unset,
//      empty or relative value is ignored, as the XDG Base Directory specification says).
// Empty when none applies (no usable HOME): the caller asks for an explicit directory.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace statherd {

// Looks up an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// The process's own environment (getenv).
EnvLookup process_env();

// The rules above; `name` is the directory's name under /var/lib or the XDG state home.
std::string default_state_dir(std::string_view name, const EnvLookup& env, uid_t uid);

// Creates every missing parent directory of `path` with mode 0700 (mkdir -p of its dirname);
// `path` itself is left to the caller, which creates and checks it by its own rules.
Status create_parent_dirs(const std::string& path);

}  // namespace statherd
