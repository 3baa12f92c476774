// Logging: one line per event to stderr ("statherd-agent: error: ..."). Data goes to stdout.
// A daemon run by hand prefixes each line with its UTC time ("2026-12-01T15:20:21.123Z "); under
// systemd, whose journal stamps every line itself, and for one-shot commands it does not.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace statherd::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_program(std::string_view name);  // prefix, e.g. "statherd-server"
void set_level(Level level);
// Prefix every line with the UTC time to the millisecond.
void set_timestamps(bool on);
// True when stderr is the systemd journal's stream (JOURNAL_STREAM names stderr's device:inode).
bool stderr_is_journal();
// What a daemon calls as it starts: timestamps unless the journal stamps the lines.
inline void stamp_unless_journal() { set_timestamps(!stderr_is_journal()); }
// The prefix for a time, e.g. "2026-12-01T15:20:21.123Z " (exposed for tests).
std::string timestamp_prefix(int64_t unix_ms);
Level level();

void write(Level level, std::string_view message);
inline void debug(std::string_view m) { write(Level::Debug, m); }
inline void info(std::string_view m) { write(Level::Info, m); }
inline void warn(std::string_view m) { write(Level::Warn, m); }
inline void error(std::string_view m) { write(Level::Error, m); }

}  // namespace statherd::log
