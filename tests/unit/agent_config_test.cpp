// Agent configuration: YAML keys, command-line overrides, errors with file:line:col.
#include <gtest/gtest.h>

#include <map>

#include "agent/agent_config.h"

namespace statherd::agent {
namespace {

using namespace std::chrono_literals;

AgentConfig read_yaml(std::string_view text, std::vector<ConfigError>* errors = nullptr) {
  YamlReader reader("agent.yaml", text);
  AgentConfig config;
  read_agent_yaml(reader, config);
  if (errors) *errors = reader.errors();
  return config;
}

Result<CommandLine> parse(std::vector<const char*> args) {
  args.insert(args.begin(), "statherd-agent");
  return parse_command_line(static_cast<int>(args.size()), args.data());
}

TEST(AgentConfig, ReadsEveryKey) {
  std::vector<ConfigError> errors;
  AgentConfig c = read_yaml(R"(server: http://collector.example:8470/statherd
token_file: /etc/statherd/token
interval: 5s
host: web-1
agent_id: web-1-agent
spool_dir: /var/spool/statherd
spool_max_bytes: 64MiB
ship_timeout: 2500ms
mmstats:
  globs: [/tmp/*.mmstats, /run/app/*.mmstats]
  counter_patterns:
    - "*.hits"
)",
                            &errors);
  EXPECT_TRUE(errors.empty()) << errors.front().to_string();
  EXPECT_EQ(c.server, "http://collector.example:8470/statherd");
  EXPECT_EQ(c.token_file, "/etc/statherd/token");
  EXPECT_EQ(c.interval, 5s);
  EXPECT_EQ(c.host, "web-1");
  EXPECT_EQ(c.agent_id, "web-1-agent");
  EXPECT_EQ(c.spool_dir, "/var/spool/statherd");
  EXPECT_EQ(c.spool_max_bytes, 64u << 20);
  EXPECT_EQ(c.ship_timeout, 2500ms);
  EXPECT_EQ(c.mmstats_globs, (std::vector<std::string>{"/tmp/*.mmstats", "/run/app/*.mmstats"}));
  ASSERT_TRUE(c.counter_patterns.has_value());
  EXPECT_EQ(*c.counter_patterns, (std::vector<std::string>{"*.hits"}));
}

TEST(AgentConfig, ReportsUnknownKeyWithLineAndColumn) {
  std::vector<ConfigError> errors;
  read_yaml("interval: 10s\nmmstats:\n  globz: [a]\n", &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 3);
  EXPECT_EQ(errors[0].column, 3);
  EXPECT_EQ(errors[0].to_string().rfind("agent.yaml:3:3: ", 0), 0u) << errors[0].to_string();
}

TEST(AgentConfig, ReportsBadDurationWithPosition) {
  std::vector<ConfigError> errors;
  read_yaml("host: a\ninterval: soon\n", &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 2);
  EXPECT_EQ(errors[0].column, 11);
  EXPECT_EQ(errors[0].key, "interval");
}

TEST(AgentConfig, RejectsHttpsServerWithPosition) {
  std::vector<ConfigError> errors;
  read_yaml("\nserver: https://collector:8470\n", &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 2);
  EXPECT_EQ(errors[0].key, "server");
  EXPECT_NE(errors[0].message.find("https"), std::string::npos);
}

TEST(AgentConfig, CommandLineOverridesYamlAndReplacesLists) {
  AgentConfig c = read_yaml("interval: 5s\nhost: yaml-host\nmmstats:\n  globs: [/a/*]\n");
  auto cli = parse({"--interval", "30s", "--mmstats-glob", "/b/*", "--mmstats-glob=/c/*",
                    "--counter-pattern", "*.n", "--spool-max-bytes", "1MiB"});
  ASSERT_TRUE(cli.ok()) << cli.error().to_string();
  apply_command_line(*cli, c);
  EXPECT_EQ(c.interval, 30s);
  EXPECT_EQ(c.host, "yaml-host");
  EXPECT_EQ(c.mmstats_globs, (std::vector<std::string>{"/b/*", "/c/*"}));
  EXPECT_EQ(*c.counter_patterns, (std::vector<std::string>{"*.n"}));
  EXPECT_EQ(c.spool_max_bytes, 1u << 20);
}

TEST(AgentConfig, ParsesModes) {
  EXPECT_EQ(parse({"--once"})->mode, CommandLine::Mode::Once);
  EXPECT_EQ(parse({"--check-config", "--config", "x.yaml"})->mode,
            CommandLine::Mode::CheckConfig);
  EXPECT_EQ(parse({"--help"})->mode, CommandLine::Mode::Help);
  EXPECT_EQ(parse({"--version"})->mode, CommandLine::Mode::Version);
  EXPECT_EQ(parse({"--config", "x.yaml"})->config_file, "x.yaml");
}

TEST(AgentConfig, RejectsBadFlags) {
  EXPECT_FALSE(parse({"--bogus"}).ok());
  EXPECT_FALSE(parse({"--interval"}).ok());
  EXPECT_FALSE(parse({"--interval", "fast"}).ok());
  EXPECT_FALSE(parse({"--server", "https://x:1"}).ok());
  EXPECT_FALSE(parse({"--once=yes"}).ok());
}

TEST(AgentConfig, DefaultsAgentIdToHost) {
  AgentConfig c;
  c.host = "h7";
  fill_defaults(c);
  EXPECT_EQ(c.agent_id, "h7");
  AgentConfig d;
  fill_defaults(d);
  EXPECT_FALSE(d.host.empty());
  EXPECT_EQ(d.agent_id, d.host);
}

// Issue #12: a non-root agent without --spool-dir exited ("cannot create
// /var/lib/statherd-agent/spool"); the default now follows systemd, root, then XDG.
TEST(AgentConfig, DefaultSpoolDirFollowsSystemdRootThenXdg) {
  auto env = [](std::map<std::string, std::string> vars) -> EnvLookup {
    return [vars](const std::string& k) -> std::optional<std::string> {
      auto it = vars.find(k);
      return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
  };
  EXPECT_EQ(default_spool_dir(env({{"STATE_DIRECTORY", "/var/lib/statherd-agent"}}), 999),
            "/var/lib/statherd-agent/spool");
  EXPECT_EQ(default_spool_dir(env({{"HOME", "/root"}}), 0), "/var/lib/statherd-agent/spool");
  EXPECT_EQ(default_spool_dir(env({{"HOME", "/home/u"}}), 1000),
            "/home/u/.local/state/statherd-agent/spool");
  EXPECT_EQ(default_spool_dir(env({{"HOME", "/home/u"}, {"XDG_STATE_HOME", "/s"}}), 1000),
            "/s/statherd-agent/spool");
  EXPECT_EQ(default_spool_dir(env({}), 1000), "");
}

TEST(AgentConfig, FillDefaultsMarksTheSpoolDirAsDefaultOnlyWhenUnset) {
  AgentConfig c;
  fill_defaults(c);
  EXPECT_TRUE(c.spool_dir_default);
  AgentConfig d;
  d.spool_dir = "/srv/spool";
  fill_defaults(d);
  EXPECT_EQ(d.spool_dir, "/srv/spool");
  EXPECT_FALSE(d.spool_dir_default);
}

TEST(AgentConfig, RequiresTokenFileOnlyWhenShipping) {
  AgentConfig c;
  EXPECT_EQ(validate_agent_config(c, /*needs_server=*/true).size(), 1u);
  EXPECT_TRUE(validate_agent_config(c, /*needs_server=*/false).empty());
}

// Issue 9 item 10: the per-file cap of the file sources, YAML key and flag (the flag wins).
TEST(AgentConfig, ReadsThePerFileCapFromKeyAndFlag) {
  EXPECT_EQ(AgentConfig{}.max_file_bytes, 64u << 20);
  std::vector<ConfigError> errors;
  AgentConfig c = read_yaml("max_file_bytes: 1MiB\n", &errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(c.max_file_bytes, 1u << 20);
  auto cli = parse({"--max-file-bytes", "8MiB"});
  ASSERT_TRUE(cli.ok()) << cli.error().to_string();
  apply_command_line(*cli, c);
  EXPECT_EQ(c.max_file_bytes, 8u << 20);
  EXPECT_FALSE(parse({"--max-file-bytes", "lots"}).ok());
  c.max_file_bytes = 100;
  const auto problems = validate_agent_config(c, /*needs_server=*/false);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("max_file_bytes: 100 is too small"), std::string::npos);
}

TEST(AgentConfig, ExampleConfigFileIsValid) {
  YamlReader reader(std::string(STATHERD_SOURCE_DIR) + "/config/agent.yaml");
  AgentConfig c;
  read_agent_yaml(reader, c);
  EXPECT_TRUE(reader.errors().empty()) << reader.errors().front().to_string();
}

}  // namespace
}  // namespace statherd::agent
