// The words both daemons use on their command line, so statherd-agent and statherd-server say
// the same thing for the same mistake (issue #12: "unknown option" vs "unknown argument", a
// full usage vs a hint, config errors out of line order):
//   statherd-X: error: --bogus: unknown option
//   hint: run statherd-X --help for every option
// and a bad configuration file is one error: every "file:line:col: key: message" line in file
// order, then one hint. --check-config prints kConfigOk on stdout when all is well.
// Exit codes: 0 fine, 2 a command-line or configuration problem, 1 a failure at run time.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/yaml_util.h"

namespace statherd::cli {

inline constexpr int kExitBadUsage = 2;
inline constexpr const char* kConfigOk = "configuration ok\n";

// "run <program> --help for every option"
std::string help_hint(std::string_view program);
// An argument that is no option of `program`: "--x: unknown option", or for a word without
// the leading dash "x: unexpected argument (options start with --)".
Error unknown_option(std::string_view program, std::string_view arg);
// "--flag: needs a value" / "--flag: takes no value".
Error needs_value(std::string_view program, std::string_view flag);
Error takes_no_value(std::string_view program, std::string_view flag);
// A flag's value that does not parse: "--flag: <message>" with `allowed` as the hint (or the
// help hint when empty).
Error bad_value(std::string_view program, std::string_view flag, const std::string& message,
                const std::string& allowed);

// Every error of a configuration file, one "file:line:col: ..." line each, sorted by position
// (a file-level error without a position first), then one hint naming the documented example
// (e.g. "config/agent.yaml").
Error config_file_error(std::vector<ConfigError> errors, std::string_view example);

}  // namespace statherd::cli
