// mmstats v1 discovery helpers: default glob, file-name parsing, /proc start times, patterns.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "agent/sources/mmstats_v1.h"

namespace statherd::agent {
namespace {

bool is_set(const char* s) { return s != nullptr && *s != '\0'; }

bool parse_int(std::string_view s, int64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

// Reads a small file whole (no iostreams). /proc files report size 0, so read until EOF.
Result<std::string> read_small_file(const std::string& path, size_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("cannot open " + path + ": " + std::strerror(errno));
  std::string data;
  char buf[4096];
  while (data.size() < limit) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

}  // namespace

std::string default_mmstats_glob(const char* mmstats_glob, const char* mmstats_path,
                                 const char* tmpdir) {
  if (is_set(mmstats_glob)) return mmstats_glob;
  std::string dir = is_set(mmstats_path) ? mmstats_path : is_set(tmpdir) ? tmpdir : "/tmp";
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir + "/*.mmstats";
}

std::string default_mmstats_glob() {
  return default_mmstats_glob(std::getenv("MMSTATS_GLOB"), std::getenv("MMSTATS_PATH"),
                              std::getenv("TMPDIR"));
}

MmstatsFileName parse_mmstats_file_name(std::string_view path) {
  std::string_view name = path.substr(path.find_last_of('/') + 1);  // npos + 1 == 0
  constexpr std::string_view kSuffix = ".mmstats";
  if (name.ends_with(kSuffix)) name.remove_suffix(kSuffix.size());
  MmstatsFileName out;
  out.app = std::string(name);
  const size_t tid_dash = name.rfind('-');
  if (tid_dash == std::string_view::npos || tid_dash == 0) return out;
  const size_t pid_dash = name.rfind('-', tid_dash - 1);
  if (pid_dash == std::string_view::npos || pid_dash == 0) return out;
  int64_t pid = 0, tid = 0;
  if (!parse_int(name.substr(pid_dash + 1, tid_dash - pid_dash - 1), pid) ||
      !parse_int(name.substr(tid_dash + 1), tid))
    return out;
  std::string_view cmd = name.substr(0, pid_dash);
  if (cmd.size() > 3 && cmd.ends_with(".py")) cmd.remove_suffix(3);
  out.app = std::string(cmd);
  out.pid = pid;
  out.tid = tid;
  return out;
}

Result<int64_t> read_boot_time_ms(const std::string& proc_root) {
  auto data = read_small_file(proc_root + "/stat", 1 << 20);
  if (!data) return data.error();
  const size_t at = data->find("\nbtime ");
  if (at == std::string::npos)
    return make_error("no btime line in " + proc_root + "/stat", "is proc_root a procfs?");
  const size_t start = at + 7;
  const size_t end = data->find('\n', start);
  int64_t btime = 0;
  if (!parse_int(std::string_view(*data).substr(start, end - start), btime))
    return make_error("malformed btime line in " + proc_root + "/stat");
  return btime * 1000;
}

Result<int64_t> read_process_start_ms(const std::string& proc_root, int64_t pid,
                                      int64_t boot_time_ms) {
  const std::string path = proc_root + "/" + std::to_string(pid) + "/stat";
  auto data = read_small_file(path, 4096);
  if (!data) return data.error();
  // "pid (comm) state ppid ...": comm may hold spaces and ')', so count from the last ')'.
  // Field 3 (state) follows it; starttime is field 22, i.e. the 20th token after ')'.
  const size_t paren = data->rfind(')');
  if (paren == std::string::npos) return make_error("malformed " + path + ": no ')'");
  std::string_view rest = std::string_view(*data).substr(paren + 1);
  for (int field = 3; field <= 22; ++field) {
    const size_t b = rest.find_first_not_of(' ');
    if (b == std::string_view::npos) break;
    rest.remove_prefix(b);
    const size_t e = std::min(rest.find(' '), rest.size());
    if (field == 22) {
      int64_t ticks = 0;
      if (!parse_int(rest.substr(0, e), ticks)) break;
      static const long hz = ::sysconf(_SC_CLK_TCK) > 0 ? ::sysconf(_SC_CLK_TCK) : 100;
      return boot_time_ms + ticks * 1000 / hz;
    }
    rest.remove_prefix(e);
  }
  return make_error("malformed " + path + ": no starttime (field 22)");
}

const std::vector<std::string>& default_mmstats_counter_patterns() {
  static const std::vector<std::string> patterns = {"*count", "*counter", "*total", "*requests",
                                                    "*errors"};
  return patterns;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star_p = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    bool advanced = false;
    if (p < pattern.size()) {
      const char c = pattern[p];
      if (c == '*') {
        star_p = p++;
        star_t = t;
        continue;
      }
      if (c == '[') {
        const size_t close = pattern.find(']', p + 2);
        if (close != std::string_view::npos) {
          const bool negate = pattern[p + 1] == '!' || pattern[p + 1] == '^';
          bool hit = false;
          for (size_t i = p + 1 + (negate ? 1 : 0); i < close; ++i) {
            if (i + 2 < close && pattern[i + 1] == '-') {
              hit = hit || (text[t] >= pattern[i] && text[t] <= pattern[i + 2]);
              i += 2;
            } else {
              hit = hit || text[t] == pattern[i];
            }
          }
          if (hit != negate) {
            p = close + 1;
            ++t;
            advanced = true;
          }
        } else if (text[t] == '[') {
          ++p, ++t, advanced = true;
        }
      } else if (c == '?' || c == text[t]) {
        ++p, ++t, advanced = true;
      }
    }
    if (advanced) continue;
    if (star_p == std::string_view::npos) return false;
    p = star_p + 1;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

LabelPatternSet::LabelPatternSet(const std::vector<std::string>& patterns) {
  for (const auto& pat : patterns) {
    const std::string_view s(pat);
    const bool special_inner = s.find_first_of("?[") != std::string_view::npos;
    const size_t stars = static_cast<size_t>(std::count(s.begin(), s.end(), '*'));
    if (!special_inner && stars == 0) {
      patterns_.push_back({Shape::Literal, pat});
    } else if (!special_inner && stars == 1 && s.front() == '*') {
      patterns_.push_back({Shape::Suffix, std::string(s.substr(1))});
    } else if (!special_inner && stars == 1 && s.back() == '*') {
      patterns_.push_back({Shape::Prefix, std::string(s.substr(0, s.size() - 1))});
    } else if (!special_inner && stars == 2 && s.size() >= 2 && s.front() == '*' && s.back() == '*') {
      patterns_.push_back({Shape::Infix, std::string(s.substr(1, s.size() - 2))});
    } else {
      patterns_.push_back({Shape::General, pat});
    }
  }
}

bool LabelPatternSet::matches(std::string_view label) const {
  for (const auto& p : patterns_) {
    switch (p.shape) {
      case Shape::Literal: if (label == p.text) return true; break;
      case Shape::Suffix:  // the last byte first: most labels fail there without a memcmp
        if (p.text.empty() || (label.size() >= p.text.size() && label.back() == p.text.back() &&
                               label.ends_with(p.text)))
          return true;
        break;
      case Shape::Prefix: if (label.starts_with(p.text)) return true; break;
      case Shape::Infix: if (label.find(p.text) != std::string_view::npos) return true; break;
      case Shape::General: if (glob_match(p.text, label)) return true; break;
    }
  }
  return false;
}

}  // namespace statherd::agent
