#include "server/server_config.h"

#include "common/state_dirs.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace statherd::server {
namespace {

using namespace std::chrono_literals;

std::string temp_file(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/serverio_" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ServerConfig, ExampleConfigParsesToTheDocumentedValues) {
  ServerConfig c;
  Status s = load_server_config_file(std::string(STATHERD_SOURCE_DIR) + "/config/server.yaml", c);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(c.listen, "127.0.0.1:8470");
  EXPECT_EQ(c.interval, 10s);
  EXPECT_EQ(c.late_window, 10min);
  EXPECT_EQ(c.snapshot_every, 5min);
  EXPECT_EQ(c.idle_timeout, 5min);
  EXPECT_FALSE(c.level_process);
  EXPECT_EQ(c.max_body_bytes, 64ull << 20);
  EXPECT_EQ(c.memory_retention, "10s:6h,5m:7d");
  EXPECT_EQ(c.memory_max_paths, 1'000'000u);
  EXPECT_EQ(c.graphite_prefix, "statherd");
  EXPECT_EQ(c.graphite_address, "");
  EXPECT_EQ(c.graphite_max_new_series_per_minute, 0u);
  EXPECT_EQ(c.threads, 0u);  // auto
}

TEST(ServerConfig, ReadAndConnectionLimitsLoadAndExampleHasTheDefaults) {
  ServerConfig example;
  ASSERT_TRUE(load_server_config_file(std::string(STATHERD_SOURCE_DIR) + "/config/server.yaml",
                                      example).ok());
  const ServerConfig defaults;
  EXPECT_EQ(example.max_read_body_bytes, defaults.max_read_body_bytes);
  EXPECT_EQ(example.max_connections, defaults.max_connections);
  EXPECT_EQ(example.connection_idle_timeout, defaults.connection_idle_timeout);
  EXPECT_EQ(example.reads.max_targets, defaults.reads.max_targets);
  EXPECT_EQ(example.reads.max_pattern_bytes, defaults.reads.max_pattern_bytes);
  EXPECT_EQ(example.reads.max_alternatives, defaults.reads.max_alternatives);
  EXPECT_EQ(example.reads.max_points, defaults.reads.max_points);
  EXPECT_EQ(example.reads.max_points_read, defaults.reads.max_points_read);
  EXPECT_EQ(example.reads.max_answer_bytes, defaults.reads.max_answer_bytes);

  ServerConfig c;
  Status s = load_server_config_text("s.yaml",
                                     "limits:\n  max_read_body_bytes: 8KiB\n"
                                     "  max_connections: 50\n  connection_idle_timeout: 5s\n"
                                     "reads:\n  max_targets: 7\n  max_brace_depth: 2\n"
                                     "  max_answer_bytes: 1MiB\n",
                                     c);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(c.max_read_body_bytes, 8192u);
  EXPECT_EQ(c.max_connections, 50u);
  EXPECT_EQ(c.connection_idle_timeout, 5s);
  EXPECT_EQ(c.reads.max_targets, 7u);
  EXPECT_EQ(c.reads.max_brace_depth, 2u);
  EXPECT_EQ(c.reads.max_answer_bytes, 1u << 20);
  Status bad = load_server_config_text("s.yaml", "reads:\n  max_targets: 0\n  nope: 1\n", c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("reads.max_targets"), std::string::npos);
  EXPECT_NE(bad.error().message.find("nope"), std::string::npos);
}

TEST(ServerConfig, MaxSamplesPerBatchBoundsTheDecoder) {
  ServerConfig c;
  EXPECT_EQ(engine_options_from(c).wire_limits.max_samples, 1'000'000u);
  ASSERT_TRUE(load_server_config_text("s.yaml", "limits:\n  max_samples_per_batch: 5000\n", c).ok());
  EXPECT_EQ(engine_options_from(c).wire_limits.max_samples, 5000u);
}

TEST(ServerConfig, ErrorsCarryFileLineColumnAndKey) {
  ServerConfig c;
  Status s = load_server_config_text("s.yaml",
                                     "interval: 10s\n"
                                     "graphite:\n"
                                     "  address: nocolon\n"
                                     "  bogus: 1\n",
                                     c);
  ASSERT_FALSE(s.ok());
  std::string text = s.error().message;
  EXPECT_NE(text.find("s.yaml:3:"), std::string::npos) << text;
  EXPECT_NE(text.find("graphite.address"), std::string::npos) << text;
  EXPECT_NE(text.find("s.yaml:4:"), std::string::npos) << text;
  EXPECT_NE(text.find("bogus"), std::string::npos) << text;
}

TEST(ServerConfig, FlagsOverrideYaml) {
  std::string path = temp_file("override.yaml",
                               "interval: 30s\nlisten: 127.0.0.1:9000\ngraphite:\n  prefix: x\n");
  auto cmd = parse_server_command_line({"--config", path, "--interval=5s", "--graphite", "-",
                                        "--level-process", "--retention", "2h"});
  ASSERT_TRUE(cmd.ok()) << cmd.error().to_string();
  EXPECT_EQ(cmd->config.interval, 5s);
  EXPECT_EQ(cmd->config.listen, "127.0.0.1:9000");
  EXPECT_EQ(cmd->config.graphite_prefix, "x");
  EXPECT_EQ(cmd->config.graphite_address, "-");
  EXPECT_TRUE(cmd->config.level_process);
  EXPECT_EQ(cmd->config.memory_retention, "2h");
  EXPECT_EQ(engine_options_from(cmd->config).interval, 5s);
  EXPECT_TRUE(engine_options_from(cmd->config).level_process);
}

TEST(ServerConfig, SnapshotEveryComesFromYamlOrTheFlagAndReachesTheEngine) {
  EXPECT_EQ(EngineOptions{}.snapshot_every, ServerConfig{}.snapshot_every);
  std::string path = temp_file("snapshot.yaml", "snapshot_every: 90s\n");
  auto yaml = parse_server_command_line({"--config", path});
  ASSERT_TRUE(yaml.ok()) << yaml.error().to_string();
  EXPECT_EQ(engine_options_from(yaml->config).snapshot_every, 90s);
  auto flag = parse_server_command_line({"--config", path, "--snapshot-every", "2m"});
  ASSERT_TRUE(flag.ok()) << flag.error().to_string();
  EXPECT_EQ(engine_options_from(flag->config).snapshot_every, 2min);
  ServerConfig c;
  Status bad = load_server_config_text("s.yaml", "snapshot_every: often\n", c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().to_string().find("snapshot_every"), std::string::npos)
      << bad.error().to_string();
}

// Issue #12: state_dir had no default (the WAL was off unless configured); it now follows the
// agent's rule (common/state_dirs.h); an explicit empty value still turns the WAL off.
TEST(ServerConfig, StateDirDefaultsLikeTheAgentsSpoolDir) {
  auto cmd = parse_server_command_line({"--listen", "127.0.0.1:1"});
  ASSERT_TRUE(cmd.ok()) << cmd.error().to_string();
  const std::string expected = default_state_dir("statherd", process_env(), ::geteuid());
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(cmd->config.state_dir, expected);
  auto flag = parse_server_command_line({"--state-dir", ""});
  ASSERT_TRUE(flag.ok()) << flag.error().to_string();
  EXPECT_EQ(flag->config.state_dir, "");
  std::string path = temp_file("empty_state.yaml", "state_dir: \"\"\n");
  auto yaml = parse_server_command_line({"--config", path});
  ASSERT_TRUE(yaml.ok()) << yaml.error().to_string();
  EXPECT_EQ(yaml->config.state_dir, "");
}

// Issue #10 item 2: the rollup's threads, auto by default (the machine's cores).
TEST(ServerConfig, ThreadsAutoOrANumber) {
  ServerConfig defaults;
  EXPECT_EQ(defaults.threads, 0u);
  ServerConfig c;
  ASSERT_TRUE(load_server_config_text("t.yaml", "threads: 3\n", c).ok());
  EXPECT_EQ(c.threads, 3u);
  EXPECT_EQ(engine_options_from(c).threads, 3u);
  ASSERT_TRUE(load_server_config_text("t.yaml", "threads: auto\n", c).ok());
  EXPECT_EQ(c.threads, 0u);
  Status bad = load_server_config_text("t.yaml", "interval: 10s\nthreads: 0\n", c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("t.yaml:2:"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("threads"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(load_server_config_text("t.yaml", "threads: many\n", c).ok());
  EXPECT_FALSE(load_server_config_text("t.yaml", "threads: 1000\n", c).ok());
  // A leading zero reads as octal to some YAML tools: refused, not taken as decimal.
  Status octal = load_server_config_text("t.yaml", "threads: 0256\n", c);
  ASSERT_FALSE(octal.ok());
  EXPECT_NE(octal.error().message.find("leading zero"), std::string::npos)
      << octal.error().message;
  EXPECT_FALSE(parse_server_command_line({"--threads", "02"}).ok());
  auto cmd = parse_server_command_line({"--threads", "2", "--state-dir", ""});
  ASSERT_TRUE(cmd.ok()) << cmd.error().to_string();
  EXPECT_EQ(engine_options_from(cmd->config).threads, 2u);
  auto bad_flag = parse_server_command_line({"--threads", "-1"});
  ASSERT_FALSE(bad_flag.ok());
  EXPECT_FALSE(bad_flag.error().hint.empty());
}

TEST(ServerConfig, BadFlagsAreErrorsWithHints) {
  EXPECT_FALSE(parse_server_command_line({"--nope"}).ok());
  EXPECT_FALSE(parse_server_command_line({"--interval"}).ok());
  EXPECT_FALSE(parse_server_command_line({"--interval", "soon"}).ok());
  auto bad_graphite = parse_server_command_line({"--graphite", "nowhere"});
  ASSERT_FALSE(bad_graphite.ok());
  EXPECT_FALSE(bad_graphite.error().hint.empty());
  EXPECT_TRUE(parse_server_command_line({"--help"})->help);
}

TEST(ServerConfig, TokenFileRequiredNonEmptyAndTrimmed) {
  EXPECT_FALSE(read_token_file("").ok());
  EXPECT_FALSE(read_token_file("/nonexistent/token").ok());
  EXPECT_FALSE(read_token_file(temp_file("empty_token", " \n")).ok());
  auto token = read_token_file(temp_file("token", "  s3cret\n"));
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(*token, "s3cret");
  EXPECT_NE(read_token_file("").error().hint.find("--token-file"), std::string::npos);
}

}  // namespace
}  // namespace statherd::server
