// The default state directory of both daemons (common/state_dirs.h), driven by a fake
// environment and uid.
#include "common/state_dirs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>

#include "tests/unit/temp_dir.h"

namespace statherd {
namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& var) -> std::optional<std::string> {
    auto it = vars.find(var);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(DefaultStateDir, SystemdStateDirectoryWinsEvenForRoot) {
  auto env = env_of({{"STATE_DIRECTORY", "/var/lib/statherd-agent"}, {"HOME", "/home/u"}});
  EXPECT_EQ(default_state_dir("statherd-agent", env, 0), "/var/lib/statherd-agent");
  EXPECT_EQ(default_state_dir("statherd-agent", env, 1000), "/var/lib/statherd-agent");
}

TEST(DefaultStateDir, SystemdListTakesTheFirstEntry) {
  auto env = env_of({{"STATE_DIRECTORY", "/var/lib/one:/var/lib/two"}});
  EXPECT_EQ(default_state_dir("statherd", env, 1000), "/var/lib/one");
}

TEST(DefaultStateDir, RootUsesVarLib) {
  auto env = env_of({{"HOME", "/root"}, {"XDG_STATE_HOME", "/root/state"}});
  EXPECT_EQ(default_state_dir("statherd", env, 0), "/var/lib/statherd");
  EXPECT_EQ(default_state_dir("statherd-agent", env_of({}), 0), "/var/lib/statherd-agent");
}

TEST(DefaultStateDir, UserUsesXdgStateHome) {
  auto env = env_of({{"HOME", "/home/u"}, {"XDG_STATE_HOME", "/data/state/"}});
  EXPECT_EQ(default_state_dir("statherd-agent", env, 1000), "/data/state/statherd-agent");
}

TEST(DefaultStateDir, UserWithoutXdgUsesHomeLocalState) {
  auto env = env_of({{"HOME", "/home/u"}});
  EXPECT_EQ(default_state_dir("statherd-agent", env, 1000),
            "/home/u/.local/state/statherd-agent");
  EXPECT_EQ(default_state_dir("statherd", env, 1000), "/home/u/.local/state/statherd");
}

TEST(DefaultStateDir, EmptyOrRelativeValuesAreIgnored) {
  auto env = env_of({{"STATE_DIRECTORY", ""}, {"XDG_STATE_HOME", "state"}, {"HOME", "/home/u"}});
  EXPECT_EQ(default_state_dir("statherd", env, 1000), "/home/u/.local/state/statherd");
}

TEST(DefaultStateDir, NothingUsableGivesEmpty) {
  EXPECT_EQ(default_state_dir("statherd", env_of({}), 1000), "");
  EXPECT_EQ(default_state_dir("statherd", env_of({{"HOME", ""}}), 1000), "");
}

TEST(CreateParentDirs, CreatesMissingParentsPrivateAndLeavesTheLeaf) {
  server::testing::TempDir tmp;
  const std::string leaf = tmp.path + "/a/b/spool";
  ASSERT_TRUE(create_parent_dirs(leaf).ok());
  struct stat st {};
  ASSERT_EQ(::stat((tmp.path + "/a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_NE(::stat(leaf.c_str(), &st), 0);
  EXPECT_TRUE(create_parent_dirs(leaf).ok());  // again: nothing to do
}

TEST(CreateParentDirs, ReportsAParentThatIsAFile) {
  server::testing::TempDir tmp;
  const std::string file = tmp.path + "/file";
  FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  Status s = create_parent_dirs(file + "/x/spool");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("cannot create " + file + "/x"), std::string::npos)
      << s.error().message;
}

}  // namespace
}  // namespace statherd
