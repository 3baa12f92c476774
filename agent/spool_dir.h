// The spool directory's safety rules, checked by --check-config and at every start:
//   - a missing spool_dir is created with mode 0700 (its parent must exist);
//   - an existing one must be a real directory (not a symlink), owned by the agent's uid and
//     not world-writable; otherwise it is refused with a hint, never chmod-ed or cleaned: a
//     shared directory such as /tmp (mode 1777) belongs to everybody on the host.
//   - at start only the agent's own leftover temp files (regular files it owns, named .tmp-*)
//     are removed.
#pragma once

#include <string>

#include "common/result.h"

namespace statherd::agent {

// Ok if dir is usable as a spool: an existing directory that passes the rules above, or a
// missing one that can be created (probed by creating and removing it, so --check-config leaves
// no trace). `what` names the setting in messages.
Status check_spool_dir(const std::string& dir, const std::string& what = "spool_dir");

// Creates dir with mode 0700 if missing, else checks the rules above (never changes its mode).
Status prepare_spool_dir(const std::string& dir, const std::string& what = "spool_dir");

// Removes path if it is a regular file owned by the agent's uid (never follows a symlink).
void unlink_own_temp_file(const std::string& path);

}  // namespace statherd::agent
