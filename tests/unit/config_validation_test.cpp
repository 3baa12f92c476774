// Values that used to pass --check-config and then abort or misbehave: each is an error with
// file:line:col (from YAML) or naming the flag, and a hint.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/private_dir.h"
#include "common/yaml_util.h"
#include "server/engine.h"
#include "server/server_config.h"

namespace statherd::server {
namespace {

using namespace std::chrono_literals;

Result<ServerCommand> parse(std::vector<std::string> args) {
  return parse_server_command_line(args);
}

TEST(IntervalValues, WholeSecondsFromOneSecondToAnHour) {
  EXPECT_EQ(*parse_interval("10s"), 10s);
  EXPECT_EQ(*parse_interval("1m"), 60s);
  EXPECT_EQ(*parse_interval("2000ms"), 2s);
  EXPECT_EQ(*parse_interval("1h"), 3600s);
  for (const char* bad : {"1ms", "1500ms", "999ms", "0.5s", "1.5s", "2h", "0"}) {
    auto r = parse_interval(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_FALSE(r.error().hint.empty()) << bad;
  }
  EXPECT_NE(parse_interval("1500ms").error().message.find("whole number of seconds"),
            std::string::npos);
}

TEST(ServerValidation, SubSecondOrFractionalIntervalsAreRefused) {
  for (const char* bad : {"1ms", "1500ms"}) {
    auto cmd = parse({"--token-file", "/dev/null", "--interval", bad});
    ASSERT_FALSE(cmd.ok()) << bad;
    EXPECT_NE(cmd.error().message.find("--interval"), std::string::npos) << cmd.error().message;
  }
  ServerConfig c;
  Status s = load_server_config_text("server.yaml", "listen: 127.0.0.1:1\ninterval: 1500ms\n", c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("server.yaml:2:11: interval:"), std::string::npos)
      << s.error().message;
}

TEST(ServerValidation, RetentionBeyondTheMemoryStoreLimitIsRefused) {
  auto cmd = parse({"--retention", "1000000d"});
  ASSERT_FALSE(cmd.ok());
  EXPECT_NE(cmd.error().message.find("retention"), std::string::npos) << cmd.error().message;
  EXPECT_NE(cmd.error().hint.find("at interval 10s"), std::string::npos) << cmd.error().hint;
  // 100,000 points per path: 11d 13h 46m 40s at 10s is the edge.
  EXPECT_TRUE(parse({"--retention", "1000000s"}).ok());
  EXPECT_FALSE(parse({"--retention", "1000010s"}).ok());
  EXPECT_TRUE(parse({"--retention", "1000010s", "--interval", "20s"}).ok());
  ServerConfig c;
  Status s = load_server_config_text("s.yaml", "memory:\n  retention: 1000000d\n", c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("s.yaml:2:14: memory.retention:"), std::string::npos)
      << s.error().message;
}

TEST(ServerValidation, MaxBodyBytesMustBeUsable) {
  ServerConfig c;
  Status s = load_server_config_text("s.yaml", "limits:\n  max_body_bytes: 0\n", c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("s.yaml:2:19: limits.max_body_bytes:"), std::string::npos)
      << s.error().message;
  EXPECT_NE(s.error().message.find("allowed: a size from 1024"), std::string::npos);
  ServerConfig big;
  EXPECT_FALSE(load_server_config_text("s.yaml", "limits:\n  max_body_bytes: 2GiB\n", big).ok());
  ServerConfig ok;
  EXPECT_TRUE(load_server_config_text("s.yaml", "limits:\n  max_body_bytes: 1KiB\n", ok).ok());
}

// Values that passed --check-config and then broke every request (hostile review): an idle
// timeout under a second disconnects a client between connect and request; a read body limit
// of 0 refuses every POST /render.
TEST(ServerValidation, ConnectionIdleTimeoutAndReadBodyLimitMustBeUsable) {
  ServerConfig c;
  Status idle = load_server_config_text("s.yaml", "limits:\n  connection_idle_timeout: 1ms\n", c);
  ASSERT_FALSE(idle.ok());
  EXPECT_NE(idle.error().message.find("s.yaml:2:28: limits.connection_idle_timeout:"),
            std::string::npos)
      << idle.error().message;
  ServerConfig rb;
  Status body = load_server_config_text("s.yaml", "limits:\n  max_read_body_bytes: 0\n", rb);
  ASSERT_FALSE(body.ok());
  EXPECT_NE(body.error().message.find("s.yaml:2:24: limits.max_read_body_bytes:"),
            std::string::npos)
      << body.error().message;
  ServerConfig ok;
  EXPECT_TRUE(load_server_config_text(
                  "s.yaml", "limits:\n  connection_idle_timeout: 1s\n  max_read_body_bytes: 1KiB\n",
                  ok)
                  .ok());
  EXPECT_EQ(ok.connection_idle_timeout, 1s);
  EXPECT_EQ(ok.max_read_body_bytes, 1024u);
}

class StateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/statherd-statedir-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(StateDirTest, WorldWritableStateDirIsRefusedWithTheChmodThatFixesIt) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0777), 0);
  auto cmd = parse({"--state-dir", dir_});
  ASSERT_FALSE(cmd.ok());
  EXPECT_NE(cmd.error().message.find("world-writable (mode 0777)"), std::string::npos)
      << cmd.error().message;
  EXPECT_NE(cmd.error().hint.find("chmod 0700 " + dir_), std::string::npos);
  ServerConfig c;
  Status s = load_server_config_text("s.yaml", "state_dir: " + dir_ + "\n", c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("s.yaml:1:12: state_dir:"), std::string::npos)
      << s.error().message;
  ASSERT_EQ(::chmod(dir_.c_str(), 01777), 0);  // sticky like /tmp: still refused
  EXPECT_FALSE(parse({"--state-dir", dir_}).ok());
}

TEST_F(StateDirTest, PrivateOrMissingStateDirIsAccepted) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0750), 0);
  EXPECT_TRUE(parse({"--state-dir", dir_}).ok());
  EXPECT_TRUE(parse({"--state-dir", dir_ + "/not-yet"}).ok());
  EXPECT_TRUE(check_not_world_writable(dir_ + "/not-yet", "state_dir").ok());
}

// --check-config tries what start would do, without creating anything: a missing state_dir
// needs a writable directory as its nearest existing ancestor.
TEST_F(StateDirTest, StateDirThatCannotBeCreatedIsRefusedAtCheckConfig) {
  ServerConfig c;
  Status s = load_server_config_text("s.yaml", "state_dir: /proc/nope/state\n", c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("s.yaml:1:12: state_dir:"), std::string::npos)
      << s.error().message;
  EXPECT_NE(s.error().message.find("/proc"), std::string::npos) << s.error().message;
  EXPECT_FALSE(parse({"--state-dir", "/proc/nope"}).ok());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/a"));
  EXPECT_TRUE(parse({"--state-dir", dir_ + "/a/b"}).ok());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/a"));  // nothing created by the check
}

// Only the server's user may change state_dir (hostile review: through a symlink to another
// user's directory, that user deleted the acknowledged WAL).
TEST_F(StateDirTest, SymlinkForeignOwnerOrUnstickyWorldWritableParentIsRefused) {
  const std::string real = dir_ + "/real", link = dir_ + "/link";
  ASSERT_TRUE(std::filesystem::create_directory(real));
  ASSERT_EQ(::chmod(real.c_str(), 0700), 0);
  std::filesystem::create_directory_symlink(real, link);
  auto symlinked = parse({"--state-dir", link});
  ASSERT_FALSE(symlinked.ok());
  EXPECT_NE(symlinked.error().message.find("is a symlink"), std::string::npos)
      << symlinked.error().message;
  EXPECT_NE(symlinked.error().hint.find(std::filesystem::canonical(real).string()),
            std::string::npos)
      << symlinked.error().hint;
  EXPECT_TRUE(parse({"--state-dir", real}).ok());

  ASSERT_EQ(::chmod(dir_.c_str(), 0777), 0);  // parent writable by all, no sticky bit
  auto parent = parse({"--state-dir", real});
  ASSERT_FALSE(parent.ok());
  EXPECT_NE(parent.error().message.find("world-writable without the sticky bit"),
            std::string::npos)
      << parent.error().message;
  ASSERT_EQ(::chmod(dir_.c_str(), 01777), 0);  // like /tmp: others cannot rename it away
  EXPECT_TRUE(parse({"--state-dir", real}).ok());
  ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);

  if (::geteuid() != 0) GTEST_SKIP() << "chown to another user needs root";
  ASSERT_EQ(::chown(real.c_str(), 65534, 65534), 0);  // nobody
  // `sudo statherd-server --check-config` of a directory the service user owns: fine.
  EXPECT_TRUE(parse({"--state-dir", real}).ok());
  // The start refuses it: the server's uid is not the owner.
  EngineOptions o;
  o.state_dir = real;
  Engine engine(o);
  Status foreign = engine.open(1'700'000'000'000);
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.error().message.find("owned by uid 65534"), std::string::npos)
      << foreign.error().message;
  EXPECT_NE(foreign.error().hint.find("chown"), std::string::npos);
  EXPECT_TRUE(std::filesystem::is_empty(real));  // nothing written there
}

}  // namespace
}  // namespace statherd::server
