// What `statherd-agent --check-config` warns about without failing: a configuration can be
// valid and still collect nothing (a glob that matches no file, a multiprocess directory that
// does not exist). Stat files come and go, so these are warnings: the agent keeps looking.
#pragma once

#include <string>
#include <vector>

#include "agent/agent_config.h"

namespace statherd::agent {

// One message per configured file glob that matches nothing right now and per multiprocess
// directory that does not exist (each with a hint). The default globs are not checked.
std::vector<std::string> config_warnings(const AgentConfig& config);

}  // namespace statherd::agent
