// File-system helpers of the mmstats v1 source: glob expansion that knows file types without a
// stat per file, and whole-file copies with pread() for the --once path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace statherd::agent {

// Paths of the regular files (or symlinks to them: listed so that opening them, which
// refuses every link (stat_file.h), reports it) matching any of `globs`, sorted, without
// duplicates, with glob(3) semantics (no flags: a leading '.' must be matched explicitly).
// A pattern whose wildcards are all in its last component is matched with one directory scan
// (readdir + fnmatch; the entry type comes from the directory, so no stat per file); any other
// pattern goes through glob(3) and a stat per match.
std::vector<std::string> list_mmstats_files(const std::vector<std::string>& globs);

// Copies the file behind fd from offset 0 into buf[0, n) with pread(), growing buf (capacity is
// kept for the next file) until a short read or `limit` bytes. Returns n, or an Error.
Result<size_t> copy_whole_file(int fd, std::vector<uint8_t>& buf, size_t limit);

}  // namespace statherd::agent
