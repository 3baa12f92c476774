#include "common/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

namespace statherd::log {
namespace {
std::string g_program = "statherd";
std::atomic<int> g_level{static_cast<int>(Level::Info)};
std::atomic<bool> g_timestamps{false};

const char* level_name(Level l) {
  switch (l) {
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warning";
    case Level::Error: return "error";
  }
  return "?";
}
}  // namespace

void set_program(std::string_view name) { g_program = std::string(name); }
void set_level(Level level) { g_level.store(static_cast<int>(level)); }
Level level() { return static_cast<Level>(g_level.load()); }

void set_timestamps(bool on) { g_timestamps.store(on); }

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (stream == nullptr || ::fstat(2, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  return dev == static_cast<unsigned long long>(st.st_dev) &&
         ino == static_cast<unsigned long long>(st.st_ino);
}

std::string timestamp_prefix(int64_t unix_ms) {
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[96];  // room for any int the format could print
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return buf;
}

void write(Level l, std::string_view message) {
  if (static_cast<int>(l) < g_level.load()) return;
  // One write(2) per line so lines from threads do not interleave.
  std::string line;
  line.reserve(g_program.size() + message.size() + 48);
  if (g_timestamps.load()) {
    line = timestamp_prefix(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  }
  line.append(g_program).append(": ").append(level_name(l)).append(": ").append(message);
  if (line.empty() || line.back() != '\n') line.push_back('\n');
  ssize_t rc = ::write(2, line.data(), line.size());
  (void)rc;
}

}  // namespace statherd::log
