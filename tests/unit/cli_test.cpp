// The shared command-line words of both daemons (common/cli.h).
#include "common/cli.h"

#include <gtest/gtest.h>

namespace statherd::cli {
namespace {

TEST(Cli, UnknownOptionOrArgumentPointsToHelp) {
  Error e = unknown_option("statherd-agent", "--bogus");
  EXPECT_EQ(e.to_string(), "--bogus: unknown option\nhint: run statherd-agent --help for every option");
  EXPECT_EQ(unknown_option("statherd-server", "extra").message,
            "extra: unexpected argument (options start with --)");
  EXPECT_EQ(needs_value("statherd-server", "--interval").message, "--interval: needs a value");
  EXPECT_EQ(bad_value("p", "--x", "bad", "").hint, "run p --help for every option");
  EXPECT_EQ(bad_value("p", "--x", "bad", "a size").hint, "a size");
}

TEST(Cli, ConfigErrorsComeInFileOrderWithOneHint) {
  std::vector<ConfigError> errors = {
      {"a.yaml", 5, 1, "bogus", "unknown key", "x, y"},
      {"a.yaml", 2, 11, "interval", "out of range", "1s to 1h"},
      {"a.yaml", 2, 3, "late", "bad", ""},
      {"a.yaml", 0, 0, "", "cannot read", ""}};
  Error e = config_file_error(errors, "config/agent.yaml");
  EXPECT_EQ(e.message,
            "a.yaml: cannot read\n"
            "a.yaml:2:3: late: bad\n"
            "a.yaml:2:11: interval: out of range (allowed: 1s to 1h)\n"
            "a.yaml:5:1: bogus: unknown key (allowed: x, y)");
  EXPECT_EQ(e.hint, "fix the configuration; config/agent.yaml documents every key");
}

}  // namespace
}  // namespace statherd::cli
