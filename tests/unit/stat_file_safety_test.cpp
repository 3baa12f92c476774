// What the three file sources (mmstats v1, statherd v2, prometheus_client .db) may open and
// read from a directory anyone can write (/tmp): no huge file is copied, no symbolic link is
// followed, no FIFO or device is opened, and no error message carries a byte of a file.
// Each source is tried both ways it reads files: the daemon (kept mapped) and --once.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "agent/sources/mmstats_v1.h"
#include "agent/sources/prom_multiproc.h"
#include "agent/sources/stat_file.h"
#include "agent/sources/statherd_v2.h"
#include "statherd_v2_builder.h"

namespace statherd::agent {
namespace {

namespace fs = std::filesystem;

constexpr off_t kHugeSparse = off_t{1536} << 20;  // 1.5 GiB, as in the report
const std::string kSecret = "TOPSECRET";

class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "stat_file_safety.XXXXXX").string();
    path_ = ::mkdtemp(templ.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_bytes(const fs::path& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// Writes `b` and then makes the file `size` bytes long without writing the rest (sparse).
void write_sparse(const fs::path& p, const std::vector<uint8_t>& b, off_t size) {
  write_bytes(p, b);
  ASSERT_EQ(::truncate(p.c_str(), size), 0);
}

// One mmstats v1 file with one buffered u64 field.
std::vector<uint8_t> mmstats_bytes(const std::string& label, uint64_t value) {
  std::vector<uint8_t> b{1};
  auto put16 = [&](uint16_t v) {
    b.push_back(static_cast<uint8_t>(v));
    b.push_back(static_cast<uint8_t>(v >> 8));
  };
  put16(static_cast<uint16_t>(label.size()));
  b.insert(b.end(), label.begin(), label.end());
  put16(1);
  b.push_back('Q');
  b.push_back(1);
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  b.insert(b.end(), p, p + 8);
  b.insert(b.end(), 8, 0);
  b.resize(4096, 0);
  return b;
}

std::vector<uint8_t> v2_bytes(const std::string& name, double value) {
  testing::V2FileBuilder f(static_cast<uint64_t>(::getpid()), 0, "app");
  f.add_number(1, name, {}, value);
  return f.file_bytes();
}

// A prometheus_client .db file with one entry.
std::vector<uint8_t> db_bytes(const std::string& key, double value) {
  std::vector<uint8_t> b(4096, 0);
  uint32_t used = 8;
  auto put = [&](const void* p, size_t n) {
    std::memcpy(b.data() + used, p, n);
    used += static_cast<uint32_t>(n);
  };
  uint32_t len = static_cast<uint32_t>(key.size());
  put(&len, 4);
  put(key.data(), len);
  std::string pad(8 - (len + 4) % 8, ' ');
  put(pad.data(), pad.size());
  put(&value, 8);
  std::memcpy(b.data(), &used, 4);
  return b;
}

std::string counter_key(const std::string& name) {
  return "[\"" + name + "\", \"" + name + "_total\", {}, \"help\"]";
}

int64_t status_kib(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(key.size()));
  return -1;
}

// Resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0), so that the peak of what
// follows can be read even after the memory is freed again.
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

// Both ways each source reads: a daemon source scraped twice (mapped), and a --once source.
using Scrape = std::function<ScrapeReport(const fs::path& dir, bool one_shot, uint64_t cap)>;

ScrapeReport scrape_mmstats(const fs::path& dir, bool one_shot,
                          uint64_t cap = kDefaultMaxFileBytes) {
  MmstatsV1Options o;
  o.globs = {(dir / "*.mmstats").string()};
  o.host = "h";
  o.one_shot = one_shot;
  o.max_file_bytes = cap;
  MmstatsV1Source s(o);
  ScrapeReport r;
  s.scrape(1000, r);
  if (one_shot) return r;
  ScrapeReport again;
  s.scrape(2000, again);
  return again;
}

ScrapeReport scrape_v2(const fs::path& dir, bool one_shot,
                          uint64_t cap = kDefaultMaxFileBytes) {
  StatherdV2Options o;
  o.globs = {(dir / "*.statherd").string()};
  o.host = "h";
  o.one_shot = one_shot;
  o.max_file_bytes = cap;
  StatherdV2Source s(o);
  ScrapeReport r;
  s.scrape(1000, r);
  if (one_shot) return r;
  ScrapeReport again;
  s.scrape(2000, again);
  return again;
}

ScrapeReport scrape_prom(const fs::path& dir, bool one_shot,
                          uint64_t cap = kDefaultMaxFileBytes) {
  PromMultiprocOptions o;
  o.dirs = {{dir.string(), "app"}};
  o.host = "h";
  o.one_shot = one_shot;
  o.max_file_bytes = cap;
  PromMultiprocSource s(o);
  ScrapeReport r;
  s.scrape(1000, r);
  if (one_shot) return r;
  ScrapeReport again;
  s.scrape(2000, again);
  return again;
}

std::vector<std::string> sample_names(const ScrapeReport& r) {
  std::vector<std::string> names;
  for (const auto& ss : r.sources)
    for (const auto& s : ss.samples) names.push_back(s.name);
  return names;
}

const SourceError* error_for(const ScrapeReport& r, const fs::path& p) {
  for (const auto& e : r.errors)
    if (e.source == p.string()) return &e;
  return nullptr;
}

void expect_no_secret(const ScrapeReport& r) {
  for (const auto& e : r.errors) {
    EXPECT_EQ(e.message.find(kSecret), std::string::npos) << e.source << ": " << e.message;
    EXPECT_EQ(e.source.find(kSecret), std::string::npos) << e.source;
  }
  for (const auto& name : sample_names(r)) EXPECT_EQ(name.find(kSecret), std::string::npos);
}

struct Kind {
  const char* name;
  std::string good_file, bad_file;  // names in the watched directory
  std::function<std::vector<uint8_t>(const std::string& metric)> bytes;
  Scrape scrape;
};

std::vector<Kind> kinds() {
  return {
      {"mmstats_v1", "good-1-1.mmstats", "bad-1-2.mmstats",
       [](const std::string& m) { return mmstats_bytes(m + ".count", 7); }, scrape_mmstats},
      {"statherd_v2", "good.statherd", "bad.statherd",
       [](const std::string& m) { return v2_bytes(m, 7); }, scrape_v2},
      {"prom_multiproc", "counter_1.db", "counter_2.db",
       [](const std::string& m) { return db_bytes(counter_key(m), 7); }, scrape_prom},
  };
}

TEST(StatFileSafety, RefusesAHugeSparseFileWithoutReadingIt) {
  for (const Kind& k : kinds()) {
    for (bool one_shot : {false, true}) {
      SCOPED_TRACE(std::string(k.name) + (one_shot ? " --once" : " daemon"));
      TempDir dir;
      write_bytes(dir / k.good_file, k.bytes("good"));
      write_sparse(dir / k.bad_file, k.bytes("huge"), kHugeSparse);
      reset_peak_rss();
      const int64_t rss_before = status_kib("VmRSS:");
      const ScrapeReport r = k.scrape(dir.path(), one_shot, kDefaultMaxFileBytes);
      const int64_t grew_kib = status_kib("VmHWM:") - rss_before;
      EXPECT_LT(grew_kib, 32 * 1024) << "RSS grew by " << grew_kib << " KiB";
      const SourceError* e = error_for(r, dir / k.bad_file);
      ASSERT_NE(e, nullptr) << "no error for the huge file";
      EXPECT_NE(e->message.find("larger than the per-file cap of 67108864 bytes"),
                std::string::npos) << e->message;
      EXPECT_NE(e->message.find("max_file_bytes"), std::string::npos) << e->message;
      // The file beside it is read as usual.
      const auto names = sample_names(r);
      EXPECT_NE(std::find_if(names.begin(), names.end(),
                             [](const std::string& n) { return n.find("good") == 0; }),
                names.end());
      EXPECT_EQ(std::find_if(names.begin(), names.end(),
                             [](const std::string& n) { return n.find("huge") == 0; }),
                names.end());
    }
  }
}

TEST(StatFileSafety, HonoursTheConfiguredCap) {
  for (const Kind& k : kinds()) {
    for (bool one_shot : {false, true}) {
      SCOPED_TRACE(std::string(k.name) + (one_shot ? " --once" : " daemon"));
      TempDir dir;
      write_bytes(dir / k.good_file, k.bytes("good"));       // 4 KiB
      write_sparse(dir / k.bad_file, k.bytes("big"), 8192);  // 8 KiB
      const ScrapeReport r = k.scrape(dir.path(), one_shot, 4096);
      const SourceError* e = error_for(r, dir / k.bad_file);
      ASSERT_NE(e, nullptr) << "no error for the file over the cap";
      EXPECT_NE(e->message.find("file of 8192 bytes is larger than the per-file cap of 4096"),
                std::string::npos) << e->message;
      EXPECT_EQ(sample_names(r), std::vector<std::string>{k.name == std::string("prom_multiproc")
                                                              ? "good_total"
                                                              : k.name == std::string("mmstats_v1")
                                                                    ? "good.count"
                                                                    : "good"});
    }
  }
}

TEST(StatFileSafety, DoesNotFollowASymlinkToAFileElsewhere) {
  for (const Kind& k : kinds()) {
    for (bool one_shot : {false, true}) {
      SCOPED_TRACE(std::string(k.name) + (one_shot ? " --once" : " daemon"));
      TempDir watched, elsewhere;
      // A private file that would parse as a stat file, its metric named after the secret.
      const fs::path target = elsewhere / "private";
      write_bytes(target, k.bytes(kSecret));
      ASSERT_EQ(::chmod(target.c_str(), 0600), 0);
      write_bytes(watched / k.good_file, k.bytes("good"));
      fs::create_symlink(target, watched / k.bad_file);
      const ScrapeReport r = k.scrape(watched.path(), one_shot, kDefaultMaxFileBytes);
      expect_no_secret(r);
      const SourceError* e = error_for(r, watched / k.bad_file);
      ASSERT_NE(e, nullptr) << "no error for the symlink";
      EXPECT_NE(e->message.find("symbolic link: not followed"), std::string::npos) << e->message;
      EXPECT_EQ(sample_names(r).size(), 1u);
    }
  }
}

TEST(StatFileSafety, OpensNoFifo) {
  for (const Kind& k : kinds()) {
    for (bool one_shot : {false, true}) {
      SCOPED_TRACE(std::string(k.name) + (one_shot ? " --once" : " daemon"));
      TempDir dir;
      write_bytes(dir / k.good_file, k.bytes("good"));
      ASSERT_EQ(::mkfifo((dir / k.bad_file).c_str(), 0600), 0);
      // A writer waiting on the FIFO: open(O_WRONLY | O_NONBLOCK) fails with ENXIO as long as
      // no reader has it open, so a source that opened it would be seen below.
      const ScrapeReport r = k.scrape(dir.path(), one_shot, kDefaultMaxFileBytes);
      EXPECT_EQ(sample_names(r).size(), 1u);
      const int w = ::open((dir / k.bad_file).c_str(), O_WRONLY | O_NONBLOCK);
      EXPECT_EQ(w, -1);
      if (w >= 0) ::close(w);
    }
  }
}

TEST(StatFile, RefusesLinksFifosAndDevicesBeforeOpeningThem) {
  TempDir dir;
  write_bytes(dir / "real", {1, 2, 3});
  fs::create_symlink(dir / "real", dir / "link");
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  ASSERT_EQ(::link((dir / "real").c_str(), (dir / "second").c_str()), 0);

  StatFile link = StatFile::open(AT_FDCWD, (dir / "link").c_str(), kDefaultMaxFileBytes);
  EXPECT_FALSE(link.ok());
  EXPECT_NE(link.error().message.find("symbolic link: not followed"), std::string::npos);
  StatFile fifo = StatFile::open(AT_FDCWD, (dir / "fifo").c_str(), kDefaultMaxFileBytes);
  EXPECT_FALSE(fifo.ok());
  EXPECT_NE(fifo.error().message.find("is a FIFO, not a regular file: not opened"),
            std::string::npos) << fifo.error().message;
  StatFile dev = StatFile::open(AT_FDCWD, "/dev/null", kDefaultMaxFileBytes);
  EXPECT_FALSE(dev.ok());
  EXPECT_NE(dev.error().message.find("character device"), std::string::npos);
  StatFile linked = StatFile::open(AT_FDCWD, (dir / "real").c_str(), kDefaultMaxFileBytes);
  EXPECT_FALSE(linked.ok());
  EXPECT_NE(linked.error().message.find("2 hard links"), std::string::npos);
  ASSERT_EQ(::unlink((dir / "second").c_str()), 0);
  StatFile real = StatFile::open(AT_FDCWD, (dir / "real").c_str(), kDefaultMaxFileBytes);
  ASSERT_TRUE(real.ok()) << real.error().to_string();
  EXPECT_EQ(real.size(), 3u);
  StatFile capped = StatFile::open(AT_FDCWD, (dir / "real").c_str(), 2);
  EXPECT_FALSE(capped.ok());
  EXPECT_NE(capped.error().message.find("file of 3 bytes is larger than the per-file cap of 2"),
            std::string::npos) << capped.error().message;
  StatFile gone = StatFile::open(AT_FDCWD, (dir / "gone").c_str(), kDefaultMaxFileBytes);
  EXPECT_FALSE(gone.ok());
  EXPECT_TRUE(gone.vanished());
}

// Files that are not stat files, built so that the first bytes a parser rejects are the
// secret (or decode to a number only those bytes give): no message may carry them.
TEST(StatFileSafety, ErrorMessagesCarryNoFileBytes) {
  TempDir dir;
  std::vector<uint8_t> secret(kSecret.begin(), kSecret.end());
  secret.resize(4096, 'x');
  // mmstats: a first byte that is not the version, then a field whose type code is the secret.
  write_bytes(dir / "first-1-1.mmstats", secret);
  std::vector<uint8_t> typed{1, 2, 0, 'a', 'b', static_cast<uint8_t>(kSecret.size()), 0};
  typed.insert(typed.end(), kSecret.begin(), kSecret.end());
  typed.resize(4096, 0);
  write_bytes(dir / "typed-1-1.mmstats", typed);
  // prometheus .db: "TOPS" read as the used size; a key with an unknown escape.
  write_bytes(dir / "counter_1.db", secret);
  write_bytes(dir / "counter_2.db", db_bytes("[\"a\\" + kSecret + "\", \"a\", {}, \"h\"]", 1));
  for (bool one_shot : {false, true}) {
    SCOPED_TRACE(one_shot ? "--once" : "daemon");
    ScrapeReport mm = scrape_mmstats(dir.path(), one_shot);
    ScrapeReport db = scrape_prom(dir.path(), one_shot);
    EXPECT_EQ(mm.errors.size(), 2u);
    EXPECT_EQ(db.errors.size(), 2u);
    uint32_t as_used;
    std::memcpy(&as_used, kSecret.data(), 4);
    for (const ScrapeReport* r : {&mm, &db}) {
      expect_no_secret(*r);
      for (const auto& e : r->errors) {
        SCOPED_TRACE(e.source + ": " + e.message);
        EXPECT_EQ(e.message.find(std::to_string(as_used)), std::string::npos);
        EXPECT_EQ(e.message.find(std::to_string(static_cast<int32_t>(as_used))), std::string::npos);
        EXPECT_EQ(e.message.find(std::to_string(secret[0])), std::string::npos);  // 'T' = 84
        EXPECT_EQ(e.message.find("TOP"), std::string::npos);
        EXPECT_EQ(e.message.find("\\T"), std::string::npos);
        EXPECT_NE(e.message.find("offset"), std::string::npos);
      }
    }
  }
}

}  // namespace
}  // namespace statherd::agent
