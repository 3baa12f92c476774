// The mmstats v1 source's names for the shared file helpers (stat_file_set.h,
// mapped_stat_file.h), kept for the callers and tests that know them by these names.
#pragma once

#include <string>
#include <vector>

#include "agent/sources/mapped_stat_file.h"
#include "agent/sources/stat_file_set.h"

namespace statherd::agent {

inline std::vector<std::string> list_mmstats_files(const std::vector<std::string>& globs) {
  return list_stat_files(globs);
}

}  // namespace statherd::agent
