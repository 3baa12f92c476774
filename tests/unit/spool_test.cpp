// The disk spool: order, bound (drop oldest), restart recovery, seq persistence, permissions.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "agent/spool.h"

namespace statherd::agent {
namespace {

namespace fs = std::filesystem;

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/statherd-spool-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/spool";
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<Spool> open(uint64_t max_bytes = 1 << 20, int64_t now_ms = 1'000) {
    auto s = Spool::open(dir_, max_bytes, now_ms);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().to_string());
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::string root_, dir_;
};

TEST_F(SpoolTest, ReplaysBatchesInSeqOrder) {
  auto spool = open();
  ASSERT_TRUE(spool);
  ASSERT_TRUE(spool->put(12, "twelve").ok());
  ASSERT_TRUE(spool->put(10, "ten").ok());
  ASSERT_TRUE(spool->put(11, "eleven").ok());
  EXPECT_EQ(spool->pending(), (std::vector<uint64_t>{10, 11, 12}));
  EXPECT_EQ(*spool->read(11), "eleven");
  EXPECT_EQ(spool->bytes(), 3u + 6u + 6u);
  spool->remove(10);
  EXPECT_EQ(spool->pending(), (std::vector<uint64_t>{11, 12}));
  EXPECT_FALSE(fs::exists(spool->path_of(10)));
  EXPECT_EQ(spool->bytes(), 12u);
}

TEST_F(SpoolTest, NamesFilesByZeroPaddedSeq) {
  auto spool = open();
  ASSERT_TRUE(spool->put(42, "x").ok());
  EXPECT_TRUE(fs::exists(dir_ + "/00000000000000000042.batch"));
}

TEST_F(SpoolTest, DropsOldestWhenOverBound) {
  auto spool = open(/*max_bytes=*/4096);
  const std::string kb(1000, 'x');
  for (uint64_t seq = 1; seq <= 6; ++seq) ASSERT_TRUE(spool->put(seq, kb).ok());
  EXPECT_EQ(spool->pending(), (std::vector<uint64_t>{3, 4, 5, 6}));
  EXPECT_EQ(spool->dropped_batches(), 2u);
  EXPECT_EQ(spool->bytes(), 4000u);
  EXPECT_FALSE(fs::exists(spool->path_of(1)));
  EXPECT_TRUE(fs::exists(spool->path_of(3)));
}

TEST_F(SpoolTest, RefusesBatchLargerThanWholeBound) {
  auto spool = open(4096);
  ASSERT_TRUE(spool->put(1, "small").ok());
  EXPECT_FALSE(spool->put(2, std::string(5000, 'x')).ok());
  EXPECT_EQ(spool->pending(), (std::vector<uint64_t>{1}));
  EXPECT_EQ(spool->dropped_batches(), 1u);
}

TEST_F(SpoolTest, RecoversBatchesAfterRestartAndDeletesTempFiles) {
  {
    auto spool = open();
    ASSERT_TRUE(spool->put(7, "seven").ok());
    ASSERT_TRUE(spool->put(8, "eight").ok());
  }
  std::ofstream(dir_ + "/.tmp-00000000000000000009.batch") << "half";
  std::ofstream(dir_ + "/unrelated.txt") << "keep";
  auto spool = open();
  EXPECT_EQ(spool->pending(), (std::vector<uint64_t>{7, 8}));
  EXPECT_EQ(*spool->read(8), "eight");
  EXPECT_EQ(spool->bytes(), 10u);
  EXPECT_FALSE(fs::exists(dir_ + "/.tmp-00000000000000000009.batch"));
  EXPECT_TRUE(fs::exists(dir_ + "/unrelated.txt"));
}

TEST_F(SpoolTest, PersistsSeqAndLastScrapeAcrossRestarts) {
  uint64_t first = 0;
  {
    auto spool = open(1 << 20, /*now_ms=*/5'000);
    first = *spool->begin_batch(111);
    EXPECT_EQ(first, 5'000u);  // no state yet: seq starts at the wall clock
    EXPECT_EQ(*spool->begin_batch(222), first + 1);
  }
  auto spool = open(1 << 20, /*now_ms=*/1);
  EXPECT_EQ(spool->last_scrape_ms(), 222);
  EXPECT_EQ(*spool->begin_batch(333), first + 2);
}

TEST_F(SpoolTest, NeverReusesSpooledSeqEvenWithStaleState) {
  {
    auto spool = open(1 << 20, 10);
    ASSERT_TRUE(spool->put(500, "x").ok());
  }
  auto spool = open(1 << 20, 10);
  EXPECT_EQ(*spool->begin_batch(1), 501u);
}

TEST_F(SpoolTest, WritesFilesWithMode0600InDir0700) {
  auto spool = open();
  ASSERT_TRUE(spool->put(1, "secret").ok());
  ASSERT_TRUE(spool->begin_batch(1).ok());
  struct stat st {};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat(spool->path_of(1).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir_ + "/state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(SpoolTest, FailsWithHintWhenDirCannotBeCreated) {
  auto s = Spool::open("/proc/statherd-no-such/spool", 4096, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().hint.find("--spool-dir"), std::string::npos);
}

}  // namespace
}  // namespace statherd::agent
