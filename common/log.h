// Logging: one line per event to stderr ("statherd-agent: error: ..."). Data goes to stdout.
#pragma once

#include <string_view>

namespace statherd::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_program(std::string_view name);  // prefix, e.g. "statherd-server"
void set_level(Level level);
Level level();

void write(Level level, std::string_view message);
inline void debug(std::string_view m) { write(Level::Debug, m); }
inline void info(std::string_view m) { write(Level::Info, m); }
inline void warn(std::string_view m) { write(Level::Warn, m); }
inline void error(std::string_view m) { write(Level::Error, m); }

}  // namespace statherd::log
