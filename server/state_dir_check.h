// What start would do with state_dir, checked without changing anything (--check-config and
// start): the directory holds acknowledged data (WAL, snapshot), so it must be usable and only
// the server's user may change it. Rules, each an error with a hint:
// - missing: its nearest existing ancestor must be a writable directory on a filesystem that
//   holds files (not /proc or /sys), since start creates it (mode 0700);
// - present: a real directory (not a symlink), not world-writable (common/private_dir.h), in a
//   parent that is not world-writable without the sticky bit;
// - at start only (Engine::open): owned by the server's uid. Not at --check-config, which is
//   run with sudo for a directory the service user owns.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.h"

namespace statherd::server {

Status check_state_dir(const std::string& path);
// `uid`: the user the server runs as. Ok if `path` does not exist.
Status check_state_dir_owner(const std::string& path, uid_t uid);

}  // namespace statherd::server
