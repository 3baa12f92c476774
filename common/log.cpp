#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace statherd::log {
namespace {
std::string g_program = "statherd";
std::atomic<int> g_level{static_cast<int>(Level::Info)};

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

void write(Level l, std::string_view message) {
  if (static_cast<int>(l) < g_level.load()) return;
  // One write(2) per line so lines from threads do not interleave.
  std::string line;
  line.reserve(g_program.size() + message.size() + 16);
  line.append(g_program).append(": ").append(level_name(l)).append(": ").append(message);
  if (line.empty() || line.back() != '\n') line.push_back('\n');
  ssize_t rc = ::write(2, line.data(), line.size());
  (void)rc;
}

}  // namespace statherd::log
