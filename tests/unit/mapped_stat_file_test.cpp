// MappedStatFile and StatFileSet: the mapped-file mechanics the three file sources share -
// remap on growth, truncation and replacement, the SIGBUS-guarded copy, the size cap, and the
// per-path bookkeeping (fresh, changed, forgotten).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/sources/mapped_stat_file.h"
#include "agent/sources/stat_file_set.h"

namespace statherd::agent {
namespace {

namespace fs = std::filesystem;
constexpr size_t kPage = 4096;

struct TempDir {
  fs::path path;
  TempDir() {
    static int n = 0;
    path = fs::temp_directory_path() /
           ("mapped_stat_file_test_" + std::to_string(getpid()) + "_" + std::to_string(n++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// Writes `n` bytes of `fill` to path (created or truncated).
void write_file(const std::string& path, size_t n, uint8_t fill) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  std::vector<uint8_t> bytes(n, fill);
  ASSERT_EQ(::write(fd, bytes.data(), n), static_cast<ssize_t>(n));
  ::close(fd);
}

void append_file(const std::string& path, size_t n, uint8_t fill) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  std::vector<uint8_t> bytes(n, fill);
  ASSERT_EQ(::write(fd, bytes.data(), n), static_cast<ssize_t>(n));
  ::close(fd);
}

struct stat lstat_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0);
  return st;
}

MapRules rules(uint64_t max_bytes = kDefaultMaxFileBytes) { return {max_bytes, 1, nullptr}; }

TEST(MappedStatFile, MapsTheWholeFileAndCopiesItIntoAnImage) {
  TempDir dir;
  const std::string p = dir.file("a.stat");
  write_file(p, 2 * kPage + 10, 7);
  MappedStatFile m;
  ASSERT_TRUE(m.map(AT_FDCWD, p.c_str(), rules()));
  EXPECT_TRUE(m.mapped());
  EXPECT_EQ(m.size(), 2 * kPage + 10);
  EXPECT_EQ(m.inode(), lstat_of(p).st_ino);
  std::vector<uint8_t> image;
  std::string fault;
  ASSERT_TRUE(m.copy_to_image(image, kPage, kPage + 10, fault)) << fault;
  EXPECT_GE(image.size(), m.size());
  EXPECT_EQ(image[kPage], 7);
  EXPECT_EQ(image[2 * kPage + 9], 7);
  EXPECT_EQ(image[0], 0);  // only the range asked for is copied
}

TEST(MappedStatFile, UnchangedFileIsNotRemapped) {
  TempDir dir;
  const std::string p = dir.file("a.stat");
  write_file(p, kPage, 1);
  MappedStatFile m;
  ASSERT_TRUE(m.map(AT_FDCWD, p.c_str(), rules()));
  const uint8_t* before = m.data();
  ASSERT_TRUE(m.ensure_mapped(AT_FDCWD, p.c_str(), lstat_of(p), rules()));
  EXPECT_EQ(m.data(), before);
}

TEST(MappedStatFile, RemapsWhenTheFileGrows) {
  TempDir dir;
  const std::string p = dir.file("a.stat");
  write_file(p, kPage, 1);
  MappedStatFile m;
  ASSERT_TRUE(m.map(AT_FDCWD, p.c_str(), rules()));
  append_file(p, kPage + 100, 2);
  const struct stat st = lstat_of(p);
  EXPECT_FALSE(m.maps(st));
  ASSERT_TRUE(m.ensure_mapped(AT_FDCWD, p.c_str(), st, rules()));
  EXPECT_EQ(m.size(), 2 * kPage + 100);
  uint8_t tail[2] = {};
  std::string fault;
  ASSERT_TRUE(m.copy(2 * kPage + 98, 2, tail, fault)) << fault;
  EXPECT_EQ(tail[0], 2);
  EXPECT_EQ(tail[1], 2);
}

TEST(MappedStatFile, RemapsWhenTheFileIsTruncated) {
  TempDir dir;
  const std::string p = dir.file("a.stat");
  write_file(p, 3 * kPage, 1);
  MappedStatFile m;
  ASSERT_TRUE(m.map(AT_FDCWD, p.c_str(), rules()));
  ASSERT_EQ(::truncate(p.c_str(), kPage / 2), 0);
  const struct stat st = lstat_of(p);
  EXPECT_FALSE(m.maps(st));
  ASSERT_TRUE(m.ensure_mapped(AT_FDCWD, p.c_str(), st, rules()));
  EXPECT_EQ(m.size(), kPage / 2);
  std::vector<uint8_t> image;
  std::string fault;
  EXPECT_TRUE(m.copy_to_image(image, 0, m.size(), fault)) << fault;
  // Past the new end is refused as a range error, never read (it would SIGBUS).
  EXPECT_FALSE(m.copy(kPage, 8, image.data(), fault));
  EXPECT_NE(fault.find("past the mapping"), std::string::npos) << fault;
}

TEST(MappedStatFile, RemapsWhenTheNameIsReplacedByAnotherInode) {
  TempDir dir;
  const std::string p = dir.file("a.stat");
  write_file(p, kPage, 1);
  MappedStatFile m;
  ASSERT_TRUE(m.map(AT_FDCWD, p.c_str(), rules()));
  const uint64_t old_inode = m.inode();
  const std::string next = dir.file("a.stat.new");
  write_file(next, kPage, 9);  // same size: only the inode tells them apart
  ASSERT_EQ(::rename(next.c_str(), p.c_str()), 0);
  const struct stat st = lstat_of(p);
  ASSERT_NE(static_cast<uint64_t>(st.st_ino), old_inode);
  EXPECT_FALSE(m.maps(st));
  ASSERT_TRUE(m.ensure_mapped(AT_FDCWD, p.c_str(), st, rules()));
  EXPECT_EQ(m.inode(), static_cast<uint64_t>(st.st_ino));
  uint8_t b = 0;
  std::string fault;
  ASSERT_TRUE(m.copy(10, 1, &b, fault));
  EXPECT_EQ(b, 9);
}

TEST(MappedStatFile, FileTruncatedUnderTheMappingIsAnErrorNotACrash) {
  TempDir dir;
  const std::string p = dir.file("a.stat");
  write_file(p, 3 * kPage, 5);
  MappedStatFile m;
  ASSERT_TRUE(m.map(AT_FDCWD, p.c_str(), rules()));
  ASSERT_EQ(::truncate(p.c_str(), 0), 0);  // after our size check: the reads below SIGBUS
  std::vector<uint8_t> image;
  std::string fault;
  EXPECT_FALSE(m.copy_to_image(image, 0, m.size(), fault));
  EXPECT_NE(fault.find("file shrank while being read (SIGBUS)"), std::string::npos) << fault;
  fault.clear();
  volatile uint8_t sink = 0;
  const uint8_t* data = m.data();
  EXPECT_FALSE(m.read([&sink, data] { sink = data[kPage]; }, fault));
  EXPECT_FALSE(fault.empty());
  // The caller's recovery: unmap, then map the file as it is now.
  m.unmap();
  write_file(p, kPage, 6);
  ASSERT_TRUE(m.map(AT_FDCWD, p.c_str(), rules()));
  uint8_t b = 0;
  fault.clear();
  ASSERT_TRUE(m.copy(0, 1, &b, fault)) << fault;
  EXPECT_EQ(b, 6);
}

TEST(MappedStatFile, FileOverTheSizeCapIsRefusedUnmapped) {
  TempDir dir;
  const std::string p = dir.file("big.stat");
  write_file(p, 2 * kPage, 1);
  MappedStatFile m;
  Status st = m.map(AT_FDCWD, p.c_str(), rules(kPage), /*checked_before_open=*/false);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("larger than the per-file cap of 4096 bytes"),
            std::string::npos)
      << st.error().message;
  EXPECT_FALSE(m.mapped());
  // Checked at open too (after the fstat), when the caller's lstat() was done earlier.
  st = m.map(AT_FDCWD, p.c_str(), rules(kPage), /*checked_before_open=*/true);
  EXPECT_FALSE(st);
  // A mapped file that grows past the cap is unmapped by the remap, not followed.
  write_file(p, kPage, 1);
  ASSERT_TRUE(m.map(AT_FDCWD, p.c_str(), rules(kPage)));
  append_file(p, 1, 1);
  EXPECT_FALSE(m.ensure_mapped(AT_FDCWD, p.c_str(), lstat_of(p), rules(kPage)));
  EXPECT_FALSE(m.mapped());
}

TEST(MappedStatFile, SymlinkIsNeverFollowed) {
  TempDir dir;
  const std::string target = dir.file("private");
  write_file(target, kPage, 1);
  const std::string link = dir.file("a.stat");
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  MappedStatFile m;
  for (bool checked : {false, true}) {
    Status st = m.map(AT_FDCWD, link.c_str(), rules(), checked);
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find("symbolic link"), std::string::npos) << st.error().message;
    EXPECT_FALSE(m.mapped());
  }
}

Error too_short_for_test() { return make_error("format x: shorter than its header"); }

TEST(MappedStatFile, ShorterThanTheFormatsMinimumIsTheFormatsError) {
  TempDir dir;
  const std::string p = dir.file("a.stat");
  write_file(p, 100, 1);
  MappedStatFile m;
  Status st = m.map(AT_FDCWD, p.c_str(), {kDefaultMaxFileBytes, 256, too_short_for_test});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "format x: shorter than its header");
  write_file(p, 0, 0);
  st = m.map(AT_FDCWD, p.c_str(), rules());  // an empty file cannot be mapped at all
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("0 bytes"), std::string::npos) << st.error().message;
  fs::remove(p);
  st = m.map(AT_FDCWD, p.c_str(), rules());
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("deleted"), std::string::npos) << st.error().message;
}

struct TestFile : TrackedStatFile {};

TEST(StatFileSet, FreshOnlyForAFileThatAppearedAfterTheFirstScrape) {
  TempDir dir;
  const std::string a = dir.file("a.stat"), b = dir.file("b.stat");
  write_file(a, 10, 1);
  StatFileSet<TestFile> set;
  std::vector<SourceError> errors;
  StatFileVisit v;
  set.begin_scrape();
  ASSERT_NE(set.visit(a, kDefaultMaxFileBytes, v, errors), nullptr);
  EXPECT_TRUE(v.inserted);
  EXPECT_FALSE(v.fresh);  // first scrape: already running before we looked
  set.end_scrape();

  write_file(b, 10, 1);
  set.begin_scrape();
  ASSERT_NE(set.visit(a, kDefaultMaxFileBytes, v, errors), nullptr);
  EXPECT_FALSE(v.fresh);
  EXPECT_FALSE(v.changed);
  ASSERT_NE(set.visit(b, kDefaultMaxFileBytes, v, errors), nullptr);
  EXPECT_TRUE(v.fresh);  // appeared since the last scrape: counted whole
  set.end_scrape();

  // Not listed at one scrape: forgotten, so it is fresh again when it reappears.
  set.begin_scrape();
  ASSERT_NE(set.visit(a, kDefaultMaxFileBytes, v, errors), nullptr);
  set.end_scrape();
  set.begin_scrape();
  ASSERT_NE(set.visit(b, kDefaultMaxFileBytes, v, errors), nullptr);
  EXPECT_TRUE(v.inserted);
  EXPECT_TRUE(v.fresh);
  EXPECT_TRUE(errors.empty());
}

TEST(StatFileSet, ChangedReplacedAndShrankComeFromTheLstat) {
  TempDir dir;
  const std::string a = dir.file("a.stat");
  write_file(a, 100, 1);
  StatFileSet<TestFile> set;
  std::vector<SourceError> errors;
  StatFileVisit v;
  set.begin_scrape();
  TestFile* f = set.visit(a, kDefaultMaxFileBytes, v, errors);
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(f->map.ensure_mapped(AT_FDCWD, a.c_str(), v.st, rules()));
  set.end_scrape();
  EXPECT_EQ(set.mapped_count(), 1u);

  ASSERT_EQ(::truncate(a.c_str(), 50), 0);
  set.begin_scrape();
  ASSERT_EQ(set.visit(a, kDefaultMaxFileBytes, v, errors), f);
  EXPECT_TRUE(v.changed);
  EXPECT_TRUE(v.shrank());
  EXPECT_TRUE(v.resized());
  EXPECT_FALSE(v.replaced());
  set.end_scrape();

  const std::string next = dir.file("next");
  write_file(next, 50, 2);
  ASSERT_EQ(::rename(next.c_str(), a.c_str()), 0);
  set.begin_scrape();
  ASSERT_EQ(set.visit(a, kDefaultMaxFileBytes, v, errors), f);
  EXPECT_TRUE(v.replaced());
  EXPECT_FALSE(v.resized());
  set.end_scrape();

  // A dead process's file: read one last time, then unmapped.
  f->finish_read(/*alive=*/false);
  EXPECT_TRUE(f->final_read_done);
  EXPECT_EQ(set.mapped_count(), 0u);
}

TEST(StatFileSet, FileThatBecameASymlinkOrGrewPastTheCapIsAnErrorAndForgotten) {
  TempDir dir;
  const std::string a = dir.file("a.stat"), target = dir.file("private");
  write_file(a, 100, 1);
  write_file(target, 100, 1);
  StatFileSet<TestFile> set;
  std::vector<SourceError> errors;
  StatFileVisit v;
  set.begin_scrape();
  TestFile* f = set.visit(a, kDefaultMaxFileBytes, v, errors);
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(f->map.ensure_mapped(AT_FDCWD, a.c_str(), v.st, rules()));
  set.end_scrape();

  fs::remove(a);
  ASSERT_EQ(::symlink(target.c_str(), a.c_str()), 0);
  set.begin_scrape();
  EXPECT_EQ(set.visit(a, kDefaultMaxFileBytes, v, errors), nullptr);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].source, a);
  EXPECT_NE(errors[0].message.find("symbolic link"), std::string::npos) << errors[0].message;
  EXPECT_EQ(set.mapped_count(), 0u);  // unmapped at once, not at the end of the scrape

  fs::remove(a);
  write_file(a, 200, 1);
  errors.clear();
  EXPECT_EQ(set.visit(a, 100, v, errors), nullptr);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("per-file cap"), std::string::npos) << errors[0].message;
  // Vanished between the listing and the lstat: no error, nothing kept.
  errors.clear();
  EXPECT_EQ(set.visit(dir.file("gone.stat"), 100, v, errors), nullptr);
  EXPECT_TRUE(errors.empty());
}

TEST(StatFileSet, ListsRegularFilesAndLinksSortedWithoutDuplicates) {
  TempDir dir;
  write_file(dir.file("b.stat"), 1, 1);
  write_file(dir.file("a.stat"), 1, 1);
  write_file(dir.file("c.other"), 1, 1);
  ASSERT_EQ(::mkfifo(dir.file("f.stat").c_str(), 0600), 0);
  const std::string d = dir.path.string() + "/";
  EXPECT_EQ(list_stat_files({d + "*.stat", d + "a*"}),
            (std::vector<std::string>{d + "a.stat", d + "b.stat"}));
}

}  // namespace
}  // namespace statherd::agent
