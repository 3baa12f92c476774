// guarded_read: a mapped file truncated under us is an error, not a crash; any other SIGBUS
// still kills the process.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "agent/mapped_guard.h"

namespace statherd::agent {
namespace {

namespace fs = std::filesystem;

// A file of `size` bytes (byte i = i % 251), mapped read-only and shared as the sources map.
struct MappedTempFile {
  fs::path path;
  int fd = -1;
  const uint8_t* data = nullptr;
  size_t size = 0;

  explicit MappedTempFile(size_t n) : size(n) {
    path = fs::temp_directory_path() /
           ("mapped_guard_test_" + std::to_string(getpid()) + "_" + std::to_string(counter()++));
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    std::vector<uint8_t> bytes(n);
    for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(i % 251);
    if (fd < 0 || ::write(fd, bytes.data(), n) != static_cast<ssize_t>(n)) std::abort();
    void* p = ::mmap(nullptr, n, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) std::abort();
    data = static_cast<const uint8_t*>(p);
  }
  ~MappedTempFile() {
    ::munmap(const_cast<uint8_t*>(data), size);
    ::close(fd);
    fs::remove(path);
  }
  void truncate_to(off_t n) { ASSERT_EQ(::ftruncate(fd, n), 0); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

constexpr size_t kPage = 4096;

TEST(MappedGuard, CopiesAnIntactMapping) {
  MappedTempFile f(3 * kPage);
  std::vector<uint8_t> copy(f.size);
  std::string error;
  ASSERT_TRUE(guarded_copy(f.data, f.size, 0, f.size, copy.data(), error));
  EXPECT_TRUE(error.empty());
  EXPECT_EQ(copy[kPage + 7], static_cast<uint8_t>((kPage + 7) % 251));
  EXPECT_EQ(0, std::memcmp(copy.data(), f.data, f.size));
}

TEST(MappedGuard, FileTruncatedAfterTheSizeCheckIsAnErrorNotACrash) {
  MappedTempFile f(3 * kPage);
  // The caller's size check happened at mapping time; the writer truncates afterwards.
  f.truncate_to(0);
  std::vector<uint8_t> copy(f.size);
  std::string error;
  EXPECT_FALSE(guarded_copy(f.data, f.size, 0, f.size, copy.data(), error));
  EXPECT_NE(error.find("file shrank while being read (SIGBUS)"), std::string::npos) << error;
  // The handler stays armed: every later faulting read is caught too.
  for (int i = 0; i < 3; ++i) {
    error.clear();
    EXPECT_FALSE(guarded_copy(f.data, f.size, kPage, 8, copy.data(), error));
    EXPECT_FALSE(error.empty());
  }
}

TEST(MappedGuard, ShrinkToAnUnalignedSizeFaultsOnlyPastTheLastPage) {
  MappedTempFile f(3 * kPage);
  f.truncate_to(kPage + 100);
  std::vector<uint8_t> copy(f.size);
  std::string error;
  // The page holding the new end is still readable (zeros past the end)...
  ASSERT_TRUE(guarded_copy(f.data, f.size, 0, 2 * kPage, copy.data(), error)) << error;
  EXPECT_EQ(copy[kPage + 99], static_cast<uint8_t>((kPage + 99) % 251));
  EXPECT_EQ(copy[kPage + 100], 0);
  // ...the page after it is not.
  EXPECT_FALSE(guarded_copy(f.data, f.size, 0, f.size, copy.data(), error));
  EXPECT_NE(error.find("SIGBUS"), std::string::npos);
}

TEST(MappedGuard, StopsTheCallableAtTheFaultingRead) {
  MappedTempFile f(2 * kPage);
  f.truncate_to(kPage);
  int reached = 0;
  std::string error;
  const volatile uint8_t* p = f.data;
  EXPECT_FALSE(guarded_read(f.data, f.size, [&] {
    reached = 1;
    (void)p[kPage];  // faults
    reached = 2;
  }, error));
  EXPECT_EQ(reached, 1);
}

TEST(MappedGuard, GuardsEachThreadSeparately) {
  MappedTempFile f(2 * kPage);
  f.truncate_to(0);
  bool caught = false;
  std::thread t([&] {
    uint8_t b[8];
    std::string error;
    caught = !guarded_copy(f.data, f.size, kPage, sizeof b, b, error);
  });
  t.join();
  EXPECT_TRUE(caught);
}

using MappedGuardDeathTest = ::testing::Test;

TEST(MappedGuardDeathTest, SigbusOutsideAGuardedReadStillKills) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MappedTempFile f(2 * kPage);
  std::string error;
  uint8_t b[8];
  ASSERT_TRUE(guarded_copy(f.data, f.size, 0, sizeof b, b, error));  // handler installed
  f.truncate_to(0);
  const volatile uint8_t* p = f.data;
  EXPECT_EXIT((void)p[kPage], ::testing::KilledBySignal(SIGBUS), "");
}

TEST(MappedGuardDeathTest, SigbusOutsideTheGuardedRangeStillKills) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MappedTempFile guarded(2 * kPage), other(2 * kPage);
  other.truncate_to(0);
  const volatile uint8_t* p = other.data;
  std::string error;
  EXPECT_EXIT(guarded_read(guarded.data, guarded.size, [&] { (void)p[kPage]; }, error),
              ::testing::KilledBySignal(SIGBUS), "");
}

}  // namespace
}  // namespace statherd::agent
