#include "common/cli.h"

#include <algorithm>

namespace statherd::cli {

std::string help_hint(std::string_view program) {
  return "run " + std::string(program) + " --help for every option";
}

Error unknown_option(std::string_view program, std::string_view arg) {
  if (arg.starts_with("-")) return make_error(std::string(arg) + ": unknown option",
                                              help_hint(program));
  return make_error(std::string(arg) + ": unexpected argument (options start with --)",
                    help_hint(program));
}

Error needs_value(std::string_view program, std::string_view flag) {
  return make_error(std::string(flag) + ": needs a value", help_hint(program));
}

Error takes_no_value(std::string_view program, std::string_view flag) {
  return make_error(std::string(flag) + ": takes no value", help_hint(program));
}

Error bad_value(std::string_view program, std::string_view flag, const std::string& message,
                const std::string& allowed) {
  return make_error(std::string(flag) + ": " + message,
                    allowed.empty() ? help_hint(program) : allowed);
}

Error config_file_error(std::vector<ConfigError> errors, std::string_view example) {
  std::stable_sort(errors.begin(), errors.end(), [](const ConfigError& a, const ConfigError& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  std::string message;
  for (const ConfigError& e : errors) message += (message.empty() ? "" : "\n") + e.to_string();
  return make_error(message, "fix the configuration; " + std::string(example) +
                                 " documents every key");
}

}  // namespace statherd::cli
