// See stat_file_set.h: the glob listing of per-process stat files.
#include "agent/sources/stat_file_set.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string_view>

namespace statherd::agent {
namespace {

bool is_regular_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void glob_with_libc(const std::string& pattern, std::vector<std::string>& paths) {
  glob_t g{};
  if (::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i)
      if (is_regular_file(g.gl_pathv[i])) paths.emplace_back(g.gl_pathv[i]);
  }
  ::globfree(&g);
}

// "dir/name*pattern" with no wildcard (or backslash) in "dir/" and one in the name: one scan.
// Returns false if the pattern is not of that shape.
bool glob_one_directory(const std::string& pattern, std::vector<std::string>& paths) {
  const size_t slash = pattern.rfind('/');
  const std::string_view dir_part =
      slash == std::string::npos ? std::string_view() : std::string_view(pattern).substr(0, slash + 1);
  const std::string name_pattern = pattern.substr(slash == std::string::npos ? 0 : slash + 1);
  if (dir_part.find_first_of("*?[\\") != std::string_view::npos) return false;
  if (name_pattern.find_first_of("*?[") == std::string::npos) return false;
  const std::string dir = dir_part.empty() ? "." : std::string(dir_part);
  DIR* d = ::opendir(dir.c_str());
  if (!d) return true;  // glob(3) too matches nothing in a missing or unreadable directory
  std::string path(dir_part);
  while (const dirent* e = ::readdir(d)) {
    if (e->d_type != DT_REG && e->d_type != DT_LNK && e->d_type != DT_UNKNOWN) continue;
    if (::fnmatch(name_pattern.c_str(), e->d_name, FNM_PERIOD) != 0) continue;
    path.resize(dir_part.size());
    path.append(e->d_name);
    if (e->d_type != DT_REG && !is_regular_file(path)) continue;  // symlink or unknown: follow
    paths.push_back(path);
  }
  ::closedir(d);
  return true;
}

}  // namespace

std::vector<std::string> list_stat_files(const std::vector<std::string>& globs) {
  std::vector<std::string> paths;
  for (const auto& pattern : globs)
    if (!glob_one_directory(pattern, paths)) glob_with_libc(pattern, paths);
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  return paths;
}

StatFileOpener::~StatFileOpener() {
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

StatFile StatFileOpener::open(const std::string& path, uint64_t max_bytes) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0)
    return StatFile::open(AT_FDCWD, path.c_str(), max_bytes, true);
  const std::string_view dir(path.data(), slash + 1);
  if (dir_fd_ < 0 || dir != dir_) {
    if (dir_fd_ >= 0) ::close(dir_fd_);
    dir_.assign(dir);
    dir_fd_ = ::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd_ < 0) return StatFile::open(AT_FDCWD, path.c_str(), max_bytes, true);
  }
  return StatFile::open(dir_fd_, path.c_str() + slash + 1, max_bytes, true);
}

}  // namespace statherd::agent
