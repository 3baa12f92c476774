// MmstatsV1Source in one-shot mode (--once): pread copies instead of mappings, streaming per
// file, layouts reused between files, and the directory scan that replaces glob(3).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <fstream>

#include "agent/sources/mmstats_v1.h"
#include "agent/sources/mmstats_v1_files.h"

namespace statherd::agent {
namespace {

namespace fs = std::filesystem;

struct Field {
  std::string label;
  char code;     // 'Q' (buffered u64) or 's' (unbuffered 8-byte string)
  uint64_t value;
  std::string text;
};

void write_file(const fs::path& path, const std::vector<Field>& fields) {
  std::vector<uint8_t> b{1};
  auto put16 = [&](uint16_t v) { b.push_back(static_cast<uint8_t>(v)); b.push_back(static_cast<uint8_t>(v >> 8)); };
  for (const auto& f : fields) {
    put16(static_cast<uint16_t>(f.label.size()));
    b.insert(b.end(), f.label.begin(), f.label.end());
    if (f.code == 's') {
      put16(2);
      b.push_back('8');
      b.push_back('s');
      b.push_back(255);
      std::string padded = f.text;
      padded.resize(8, '\0');
      b.insert(b.end(), padded.begin(), padded.end());
      continue;
    }
    put16(1);
    b.push_back('Q');
    b.push_back(1);  // write_buffer 1: the readable value is buffer 0
    const auto* p = reinterpret_cast<const uint8_t*>(&f.value);
    b.insert(b.end(), p, p + 8);
    b.insert(b.end(), 8, 0xEE);  // buffer 1: being written
  }
  b.resize(4096, 0);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<long>(b.size()));
}

struct TempDir {
  fs::path dir = fs::temp_directory_path() / ("mmstats_one_shot_test_" + std::to_string(getpid()));
  TempDir() {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~TempDir() { fs::remove_all(dir); }
};

MmstatsV1Options options(const fs::path& dir, bool one_shot) {
  MmstatsV1Options o;
  o.globs = {(dir / "*.mmstats").string()};
  o.host = "h1";
  o.proc_root = (dir / "no-proc").string();
  o.one_shot = one_shot;
  return o;
}

// Everything --once prints, one string per sample.
std::vector<std::string> flatten(const std::vector<SourceSamples>& sources) {
  std::vector<std::string> out;
  for (const auto& ss : sources)
    for (const auto& s : ss.samples)
      out.push_back(ss.id.path + "|" + ss.id.app + "|" + std::to_string(ss.id.pid) + "|" + s.name +
                    "|" + kind_name(s.kind) + "|" + std::to_string(s.value) + "|" + s.text);
  return out;
}

}  // namespace

TEST(MmstatsV1OneShot, StreamsTheSameSamplesAsTheMappedReader) {
  TempDir t;
  write_file(t.dir / "a-10-10.mmstats", {{"requests.count", 'Q', 7, ""}, {"queue", 'Q', 3, ""}});
  write_file(t.dir / "b-11-11.mmstats", {{"requests.count", 'Q', 8, ""}, {"queue", 'Q', 4, ""}});
  // Another layout after one that could be reused: names and kinds must follow the file.
  write_file(t.dir / "c-12-12.mmstats", {{"name", 's', 0, "web"}, {"errors", 'Q', 2, ""},
                                         {"load", 'Q', 9, ""}});
  write_file(t.dir / "d-13-13.mmstats", {{"requests.count", 'Q', 1, ""}, {"queue", 'Q', 5, ""}});

  MmstatsV1Source mapped(options(t.dir, false));
  ScrapeReport expected;
  mapped.scrape(1000, expected);
  ASSERT_TRUE(expected.errors.empty());

  MmstatsV1Source once(options(t.dir, true));
  std::vector<SourceSamples> streamed;
  std::vector<SourceError> errors;
  once.scrape_each(1000, [&](SourceSamples& ss) {
    streamed.push_back(ss);  // a copy: the object is reused for the next file
    return true;
  }, errors);
  EXPECT_TRUE(errors.empty());
  ASSERT_EQ(streamed.size(), 4u);
  EXPECT_EQ(flatten(streamed), flatten(expected.sources));
  EXPECT_EQ(streamed[2].samples[0].kind, Kind::Text);
  EXPECT_EQ(streamed[2].samples[0].text, "web");
  EXPECT_EQ(streamed[2].samples[1].kind, Kind::Counter);
  EXPECT_EQ(streamed[3].samples[1].value, 5);
  EXPECT_EQ(streamed[0].id.start_time_ms, 0);  // one-shot reads no /proc
  EXPECT_EQ(once.mapped_file_count(), 0u);
}

TEST(MmstatsV1OneShot, VisitorReturningFalseStopsTheScrape) {
  TempDir t;
  write_file(t.dir / "a-10-10.mmstats", {{"x", 'Q', 1, ""}});
  write_file(t.dir / "b-11-11.mmstats", {{"x", 'Q', 2, ""}});
  MmstatsV1Source once(options(t.dir, true));
  int seen = 0;
  std::vector<SourceError> errors;
  once.scrape_each(1, [&](SourceSamples&) { return ++seen < 1; }, errors);
  EXPECT_EQ(seen, 1);
}

TEST(MmstatsV1OneShot, BadAndEmptyFilesAreErrorsOfTheirOwn) {
  TempDir t;
  write_file(t.dir / "good-10-10.mmstats", {{"x", 'Q', 1, ""}});
  std::ofstream(t.dir / "empty-11-11.mmstats").flush();
  std::ofstream(t.dir / "junk-12-12.mmstats") << "\x07 not mmstats";
  MmstatsV1Source once(options(t.dir, true));
  std::vector<std::string> read;
  std::vector<SourceError> errors;
  once.scrape_each(1, [&](SourceSamples& ss) {
    read.push_back(ss.id.app);
    return true;
  }, errors);
  EXPECT_EQ(read, std::vector<std::string>{"good"});
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].message.find("empty file"), std::string::npos) << errors[0].message;
  EXPECT_NE(errors[1].message.find("unsupported version"), std::string::npos) << errors[1].message;
}

TEST(MmstatsV1OneShot, ReadsOnlyWholeValuesWhileAWriterKeepsCounting) {
  TempDir t;
  const fs::path path = t.dir / "busy-10-10.mmstats";
  write_file(path, {{"a.count", 'Q', 0, ""}, {"b.count", 'Q', 0, ""}});
  // Field "a.count": label_len(2) + 7 + type_len(2) + 1 = write_buffer at offset 13.
  constexpr off_t kWb = 1 + 2 + 7 + 2 + 1;
  constexpr uint64_t kLowMask = (uint64_t{1} << 26) - 1;  // values stay exact as doubles
  const int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  std::atomic<bool> stop{false};
  std::thread writer([&] {  // the original's protocol: write values[wb], then flip wb
    uint8_t wb = 1;
    for (uint64_t v = 2; !stop.load(); v += 2) {
      const uint64_t low = v & kLowMask;
      const uint64_t value = low | (low << 26);  // both halves must come from one write
      (void)!::pwrite(fd, &value, 8, kWb + 1 + wb * 8);
      wb ^= 1;
      (void)!::pwrite(fd, &wb, 1, kWb);
    }
  });
  MmstatsV1Source once(options(t.dir, true));
  int reads = 0;
  for (int i = 0; i < 300; ++i) {
    std::vector<SourceError> errors;
    once.scrape_each(1, [&](SourceSamples& ss) {
      for (const auto& s : ss.samples) {
        const auto v = static_cast<uint64_t>(s.value);
        EXPECT_EQ(v % 2, 0u) << s.name;
        EXPECT_EQ(v >> 26, v & kLowMask) << s.name << " " << v;
      }
      ++reads;
      return true;
    }, errors);
  }
  stop = true;
  writer.join();
  ::close(fd);
  EXPECT_GT(reads, 0);
}

TEST(MmstatsFiles, ListsRegularFilesAndSymlinksToThemSorted) {
  TempDir t;
  write_file(t.dir / "b-1-1.mmstats", {{"x", 'Q', 1, ""}});
  write_file(t.dir / "a-1-1.mmstats", {{"x", 'Q', 1, ""}});
  write_file(t.dir / ".hidden-1-1.mmstats", {{"x", 'Q', 1, ""}});
  write_file(t.dir / "other.txt", {{"x", 'Q', 1, ""}});
  fs::create_directories(t.dir / "dir.mmstats");
  ASSERT_EQ(::mkfifo((t.dir / "fifo.mmstats").c_str(), 0600), 0);
  fs::create_symlink(t.dir / "a-1-1.mmstats", t.dir / "link.mmstats");
  fs::create_symlink(t.dir / "missing", t.dir / "dangling.mmstats");
  const std::string d = t.dir.string() + "/";
  EXPECT_EQ(list_mmstats_files({d + "*.mmstats"}),
            (std::vector<std::string>{d + "a-1-1.mmstats", d + "b-1-1.mmstats", d + "link.mmstats"}));
  EXPECT_EQ(list_mmstats_files({d + "[ab]-?-1.mmstats", d + "a*"}),
            (std::vector<std::string>{d + "a-1-1.mmstats", d + "b-1-1.mmstats"}));
  EXPECT_EQ(list_mmstats_files({d + ".*.mmstats"}),
            (std::vector<std::string>{d + ".hidden-1-1.mmstats"}));
  // Wildcards in the directory part go through glob(3): same answer.
  const std::string parent = t.dir.parent_path().string();
  const std::string name = t.dir.filename().string();
  const std::string wild_dir = parent + "/" + name.substr(0, name.size() - 1) + "?/";
  EXPECT_EQ(list_mmstats_files({wild_dir + "b-*.mmstats"}),
            (std::vector<std::string>{d + "b-1-1.mmstats"}));
  EXPECT_TRUE(list_mmstats_files({d + "nope/*.mmstats"}).empty());
}

TEST(MmstatsFiles, CopiesWholeFilesLargerThanTheFirstBuffer) {
  TempDir t;
  std::string big(200'000, 'x');
  big[199'999] = 'y';
  std::ofstream(t.dir / "big", std::ios::binary) << big;
  const int fd = ::open((t.dir / "big").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::vector<uint8_t> buf;
  auto n = copy_whole_file(fd, buf, 1 << 20);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 200'000u);
  EXPECT_EQ(buf[199'999], 'y');
  auto capped = copy_whole_file(fd, buf, 100'000);
  ASSERT_TRUE(capped);
  EXPECT_EQ(*capped, 100'000u);
  ::close(fd);
}

}  // namespace statherd::agent
