// The shared bearer token of statherd-server and its agents, read the same way (and reported in
// the same words) by both daemons.
#pragma once

#include <string>

#include "common/result.h"

namespace statherd {

// The file's content with surrounding whitespace (and the trailing newline) trimmed. Errors:
// no path configured, an unreadable file (with the reason) or an empty one, each with a hint
// on how to create the file.
Result<std::string> read_token_file(const std::string& path);

}  // namespace statherd
