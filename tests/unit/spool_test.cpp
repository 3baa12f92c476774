// The disk spool: order, bound (drop oldest), restart recovery, seq persistence, permissions.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>

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
    EXPECT_EQ(first, 5'000u * kSeqStride);  // no state yet: seq starts at the wall clock
    EXPECT_EQ(*spool->begin_batch(222), first + kSeqStride);
  }
  auto spool = open(1 << 20, /*now_ms=*/1);
  EXPECT_EQ(spool->last_scrape_ms(), 222);
  EXPECT_EQ(*spool->begin_batch(333), first + 2 * kSeqStride);
}

TEST_F(SpoolTest, NeverReusesSpooledSeqEvenWithStaleState) {
  {
    auto spool = open(1 << 20, 10);
    ASSERT_TRUE(spool->put(500, "x").ok());
  }
  auto spool = open(1 << 20, 0);  // a clock at 0: only the spooled seq says where to go on
  const uint64_t seq = *spool->begin_batch(1);
  EXPECT_EQ(seq, 2 * kSeqStride);     // its whole window (seq - 1024, seq] lies above 500
  EXPECT_EQ(spool->window_floor(seq), kSeqStride);
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

// Issue #9 item 6: the spool made room (dropped its oldest batches) before a write that then
// failed. The write fails here for real: a file-size limit (RLIMIT_FSIZE, EFBIG) below the batch.
TEST_F(SpoolTest, AWriteThatFailsDropsNothing) {
  auto spool = open(/*max_bytes=*/4096);
  const std::string kb(1000, 'x');
  for (uint64_t seq = 1; seq <= 3; ++seq) ASSERT_TRUE(spool->put(seq, kb).ok());
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 1500;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  Status st = spool->put(4, std::string(2000, 'y'));
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(spool->pending(), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(spool->dropped_batches(), 0u);
  EXPECT_TRUE(fs::exists(spool->path_of(1)));
  EXPECT_EQ(spool->bytes(), 3000u);
  // Written, then over the bound: now the oldest goes.
  ASSERT_TRUE(spool->put(4, std::string(2000, 'y')).ok());
  EXPECT_EQ(spool->pending(), (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(spool->dropped_batches(), 1u);
}

TEST_F(SpoolTest, ASplitWrittenBeforeACrashReplacesItsBatchAndAHalfOneIsIgnored) {
  {
    auto spool = open();
    ASSERT_TRUE(spool->put(2048, "whole").ok());
    ASSERT_TRUE(spool->put(3072, "next").ok());
    ASSERT_TRUE(spool->replace_parts(2048, {{1024, 1536, "a"}, {1536, 2048, "b"}}).ok());
    EXPECT_EQ(spool->read_parts(2048)->size(), 2u);
  }
  // A crash between the rename of the .parts file and the unlink of the .batch file.
  std::ofstream(dir_ + "/00000000000000002048.batch") << "whole";
  auto spool = open();
  EXPECT_EQ(spool->pending(), (std::vector<uint64_t>{2048, 3072}));
  EXPECT_FALSE(fs::exists(dir_ + "/00000000000000002048.batch"));
  auto parts = spool->read_parts(2048);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].seq, 1536u);
  EXPECT_EQ((*parts)[1].body, "b");
  auto whole = spool->read_parts(3072);
  ASSERT_EQ(whole->size(), 1u);
  EXPECT_EQ((*whole)[0].body, "next");
}

TEST_F(SpoolTest, StateOfAnAgentCountingInStepsOfOneMovesToAFreshWindow) {
  ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0);
  std::ofstream(dir_ + "/state") << "next_seq 5000\nlast_scrape_ms 7\n";
  std::ofstream(dir_ + "/00000000000000004999.batch") << "old";
  auto spool = open(1 << 20, 1);
  const uint64_t seq = *spool->begin_batch(8);
  EXPECT_EQ(seq % kSeqStride, 0u);
  EXPECT_GE(spool->window_floor(seq), 4999u);         // no old seq inside the new window
  EXPECT_EQ(spool->window_floor(4999), 4998u);        // an old batch cannot be split
  EXPECT_EQ(*spool->begin_batch(9), seq + kSeqStride);
}

TEST_F(SpoolTest, FailsWithHintWhenDirCannotBeCreated) {
  auto s = Spool::open("/proc/statherd-no-such/spool", 4096, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().hint.find("--spool-dir"), std::string::npos);
}

}  // namespace
}  // namespace statherd::agent
