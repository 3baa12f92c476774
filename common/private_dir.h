// A directory that holds acknowledged data (the server's state_dir: WAL and snapshots) must not
// be writable by other users: anyone who can write there can delete or forge what the server
// replays at its next start. Rule: a world-writable directory is refused (at --check-config and
// at start), never silently used or "fixed"; a missing one is created later with mode 0700.
#pragma once

#include <string>

#include "common/result.h"

namespace statherd {

// Ok if `path` does not exist yet or is a directory without the other-write bit (o+w);
// otherwise an error naming the path, its mode and the chmod that fixes it. `what` names the
// setting in messages, e.g. "state_dir".
Status check_not_world_writable(const std::string& path, const std::string& what);

}  // namespace statherd
