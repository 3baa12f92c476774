// The spool directory is checked, never "fixed": a shared (world-writable), symlinked or foreign
// directory is refused with a hint, its mode is left alone, and only the agent's own temp files
// are removed at start. check_spool_dir is what --check-config and the start both run.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "agent/spool.h"
#include "agent/spool_dir.h"

namespace statherd::agent {
namespace {

namespace fs = std::filesystem;
constexpr uid_t kNobody = 65534;

class SpoolDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/statherd-spool-dir-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }

  unsigned mode_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0);
    return st.st_mode & 07777;
  }

  std::string root_;
};

TEST_F(SpoolDirTest, RefusesASharedStickyDirAndTouchesNothingInIt) {
  const std::string dir = root_ + "/shared";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 01777), 0);
  std::ofstream(dir + "/.tmp-other-users-file") << "not ours";
  auto spool = Spool::open(dir, 1 << 20, 1'000);
  ASSERT_FALSE(spool.ok());
  EXPECT_NE(spool.error().message.find("world-writable"), std::string::npos)
      << spool.error().message;
  EXPECT_NE(spool.error().hint.find("--spool-dir"), std::string::npos) << spool.error().hint;
  EXPECT_EQ(mode_of(dir), 01777u);
  EXPECT_TRUE(fs::exists(dir + "/.tmp-other-users-file"));
  EXPECT_FALSE(fs::exists(dir + "/quarantine"));
  EXPECT_FALSE(check_spool_dir(dir).ok());
}

TEST_F(SpoolDirTest, RefusesASymlinkedSpoolDir) {
  const std::string real = root_ + "/real", link = root_ + "/link";
  ASSERT_EQ(::mkdir(real.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  auto spool = Spool::open(link, 1 << 20, 1'000);
  ASSERT_FALSE(spool.ok());
  EXPECT_NE(spool.error().message.find("symlink"), std::string::npos) << spool.error().message;
  EXPECT_FALSE(check_spool_dir(link).ok());
  EXPECT_FALSE(fs::exists(real + "/quarantine"));
}

TEST_F(SpoolDirTest, RefusesADirOwnedByAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  const std::string dir = root_ + "/theirs";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir.c_str(), kNobody, kNobody), 0);
  auto spool = Spool::open(dir, 1 << 20, 1'000);
  ASSERT_FALSE(spool.ok());
  EXPECT_NE(spool.error().message.find("owned by uid 65534"), std::string::npos)
      << spool.error().message;
  EXPECT_FALSE(check_spool_dir(dir).ok());
}

TEST_F(SpoolDirTest, LeavesTheModeOfAnExistingOwnDirAlone) {
  const std::string dir = root_ + "/mine";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0750), 0);
  auto spool = Spool::open(dir, 1 << 20, 1'000);
  ASSERT_TRUE(spool.ok()) << spool.error().to_string();
  EXPECT_EQ(mode_of(dir), 0750u);
}

TEST_F(SpoolDirTest, RemovesOnlyItsOwnTempFiles) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  const std::string dir = root_ + "/spool";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  std::ofstream(dir + "/.tmp-00000000000000000009.batch") << "half";
  std::ofstream(dir + "/.tmp-foreign") << "someone else's";
  ASSERT_EQ(::chown((dir + "/.tmp-foreign").c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(::symlink("/etc/hostname", (dir + "/.tmp-link").c_str()), 0);
  auto spool = Spool::open(dir, 1 << 20, 1'000);
  ASSERT_TRUE(spool.ok()) << spool.error().to_string();
  EXPECT_FALSE(fs::exists(dir + "/.tmp-00000000000000000009.batch"));
  EXPECT_TRUE(fs::exists(dir + "/.tmp-foreign"));
  EXPECT_TRUE(fs::is_symlink(dir + "/.tmp-link"));
  EXPECT_TRUE(fs::exists("/etc/hostname"));
}

TEST_F(SpoolDirTest, CheckReportsADirThatCannotBeCreatedAndCreatesNothing) {
  Status bad = check_spool_dir("/proc/statherd-nope");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("/proc/statherd-nope"), std::string::npos);
  EXPECT_NE(bad.error().hint.find("--spool-dir"), std::string::npos);
  const std::string fresh = root_ + "/new-spool";
  EXPECT_TRUE(check_spool_dir(fresh).ok());
  EXPECT_FALSE(fs::exists(fresh));  // --check-config leaves no trace
  EXPECT_FALSE(check_spool_dir(root_ + "/missing-parent/spool").ok());
}

}  // namespace
}  // namespace statherd::agent
