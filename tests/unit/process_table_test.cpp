// ProcessTable: liveness and start times from a proc root, memoised per scrape; the fresh rule.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/sources/process_table.h"

namespace statherd::agent {
namespace {

namespace fs = std::filesystem;

TEST(ProcessTable, AnswersFromTheProcRootOncePerScrape) {
  const fs::path root = fs::temp_directory_path() / ("process_table_test_" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "42");
  std::ofstream(root / "stat") << "cpu 1 2 3\nbtime 1000\n";
  // starttime (field 22) = 5 * hz ticks: 5 s after boot.
  const long hz = ::sysconf(_SC_CLK_TCK);
  std::ofstream(root / "42" / "stat")
      << "42 (a b) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 " << 5 * hz << " 20\n";
  ProcessTable t(root.string(), "test");
  t.begin_scrape();
  EXPECT_TRUE(t.alive(42));
  EXPECT_FALSE(t.alive(43));
  EXPECT_EQ(t.start_ms(42), 1'005'000);
  EXPECT_EQ(t.start_ms(43), -1);
  fs::remove_all(root / "42");
  EXPECT_TRUE(t.alive(42));  // memoised within the scrape
  t.begin_scrape();
  EXPECT_FALSE(t.alive(42));
  EXPECT_EQ(t.start_ms(42), -1);
  fs::remove_all(root);
}

TEST(ProcessTable, FreshMeansNewSinceTheLastScanOrStartedAfterIt) {
  EXPECT_TRUE(file_is_fresh(true, 0, 0));
  EXPECT_FALSE(file_is_fresh(false, 5'000, 0));      // off
  EXPECT_TRUE(file_is_fresh(false, 5'000, 4'000));   // started after the last scan
  EXPECT_FALSE(file_is_fresh(false, 2'999, 4'000));  // already running: baselined
  EXPECT_FALSE(file_is_fresh(false, 0, 4'000));      // start unknown
}

TEST(ProcessTable, FreshAllowsForStartTimesRoundedDownToWholeBootSeconds) {
  // /proc start times rest on btime (whole seconds), so a process that started 400 ms after
  // the last scan can read as up to ~1 s earlier than it really did: still fresh.
  const int64_t last_scan = 10'000'000;
  EXPECT_TRUE(file_is_fresh(false, last_scan - 600, last_scan));
  EXPECT_TRUE(file_is_fresh(false, last_scan - 999, last_scan));
  EXPECT_FALSE(file_is_fresh(false, last_scan - 1'001, last_scan));
  EXPECT_FALSE(file_is_fresh(false, last_scan - 60'000, last_scan));
}

TEST(ProcessTable, ReadsTheBootTimeAgainEachScrapeAndKeepsStartsSinceBoot) {
  const fs::path root = fs::temp_directory_path() / ("process_table_btime_" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "42");
  const long hz = ::sysconf(_SC_CLK_TCK);
  std::ofstream(root / "42" / "stat")
      << "42 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 " << 5 * hz << " 20\n";
  std::ofstream(root / "stat") << "cpu 1 2 3\nbtime 1000\n";
  ProcessTable t(root.string(), "test");
  t.begin_scrape();
  EXPECT_EQ(t.start_ms(42), 1'005'000);
  EXPECT_EQ(t.since_boot_ms(42), 5'000);
  std::ofstream(root / "stat") << "cpu 1 2 3\nbtime 1027\n";  // the wall clock moved
  t.begin_scrape();
  EXPECT_EQ(t.start_ms(42), 1'032'000);
  EXPECT_EQ(t.since_boot_ms(42), 5'000);
  EXPECT_EQ(t.since_boot_ms(43), -1);
  fs::remove_all(root);
}

}  // namespace
}  // namespace statherd::agent
