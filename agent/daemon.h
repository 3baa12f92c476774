// statherd-agent as a daemon (no --once / --status): spool, sources, sender and loop wired
// together, signals (SIGHUP reload, SIGTERM/SIGINT drain, a second one exits at once) and the
// status file.
#pragma once

#include <cstdint>

#include "agent/agent_config.h"

namespace statherd::agent {

int64_t wall_ms();

// Runs until SIGTERM/SIGINT; returns the exit code (0 after a drain, 2 for startup errors).
int run_daemon(const CommandLine& cli, AgentConfig config);

}  // namespace statherd::agent
