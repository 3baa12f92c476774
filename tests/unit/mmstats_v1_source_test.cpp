// MmstatsV1Source: discovery, file names, counter patterns, dead pids, freshness (fake /proc).
#include <gtest/gtest.h>

#include <chrono>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "agent/sources/mmstats_v1.h"

namespace statherd::agent {
namespace {

namespace fs = std::filesystem;

void write_field_file(const fs::path& path, const std::vector<std::pair<std::string, uint64_t>>& counters) {
  std::vector<uint8_t> b{1};
  auto put16 = [&](uint16_t v) { b.push_back(static_cast<uint8_t>(v)); b.push_back(static_cast<uint8_t>(v >> 8)); };
  for (const auto& [label, value] : counters) {
    put16(static_cast<uint16_t>(label.size()));
    b.insert(b.end(), label.begin(), label.end());
    put16(1);
    b.push_back('Q');
    b.push_back(0);                 // write_buffer 0: readable is buffer 1
    b.insert(b.end(), 8, 0);        // buffer 0
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    b.insert(b.end(), p, p + 8);    // buffer 1
  }
  b.resize(4096, 0);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<long>(b.size()));
}

struct FakeHost {
  fs::path root = fs::temp_directory_path() / ("mmstats_source_test_" + std::to_string(getpid()));
  fs::path proc = root / "proc";
  fs::path dir = root / "stats";
  FakeHost() {
    fs::remove_all(root);
    fs::create_directories(proc);
    fs::create_directories(dir);
    std::ofstream(proc / "stat") << "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n";
  }
  ~FakeHost() { fs::remove_all(root); }
  void start_process(int pid, long ticks) {
    fs::create_directories(proc / std::to_string(pid));
    std::ofstream(proc / std::to_string(pid) / "stat")
        << pid << " (my (odd) app) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 " << ticks
        << " 100 200\n";
  }
  void kill_process(int pid) { fs::remove_all(proc / std::to_string(pid)); }
  MmstatsV1Options options() const {
    MmstatsV1Options o;
    o.globs = {(dir / "*.mmstats").string()};
    o.host = "h1";
    o.proc_root = proc.string();
    return o;
  }
};

const SourceSamples* by_app(const ScrapeReport& r, const std::string& app) {
  for (const auto& s : r.sources)
    if (s.id.app == app) return &s;
  return nullptr;
}

TEST(MmstatsV1Names, DefaultGlobFollowsTheOriginal) {
  EXPECT_EQ(default_mmstats_glob("/x/*.mm", "/p", "/t"), "/x/*.mm");
  EXPECT_EQ(default_mmstats_glob(nullptr, "/p/", "/t"), "/p/*.mmstats");
  EXPECT_EQ(default_mmstats_glob("", "", "/t"), "/t/*.mmstats");
  EXPECT_EQ(default_mmstats_glob(nullptr, nullptr, nullptr), "/tmp/*.mmstats");
}

TEST(MmstatsV1Names, ParsesCmdPidTid) {
  auto n = parse_mmstats_file_name("/tmp/my-app.py-1234-1240.mmstats");
  EXPECT_EQ(n.app, "my-app");
  EXPECT_EQ(n.pid, 1234);
  EXPECT_EQ(n.tid, 1240);
  auto odd = parse_mmstats_file_name("/tmp/stats.mmstats");
  EXPECT_EQ(odd.app, "stats");
  EXPECT_EQ(odd.pid, -1);
  EXPECT_EQ(parse_mmstats_file_name("x-12-ab.mmstats").pid, -1);
}

TEST(MmstatsV1Patterns, DefaultsAndGlobs) {
  LabelPatternSet d(default_mmstats_counter_patterns());
  EXPECT_TRUE(d.matches("requests.count"));
  EXPECT_TRUE(d.matches("http_errors"));
  EXPECT_TRUE(d.matches("bytes_total"));
  EXPECT_TRUE(d.matches("hits.counter"));
  EXPECT_FALSE(d.matches("queue.depth"));
  EXPECT_FALSE(d.matches("sys.pid"));
  LabelPatternSet g({"web.*.hits", "[ab]?", "exact"});
  EXPECT_TRUE(g.matches("web.x.hits"));
  EXPECT_TRUE(g.matches("bz"));
  EXPECT_FALSE(g.matches("cz"));
  EXPECT_TRUE(g.matches("exact"));
  EXPECT_FALSE(g.matches("exactly"));
  EXPECT_TRUE(glob_match("*a*b", "xxaxxb"));
  EXPECT_FALSE(glob_match("*a*b", "xxaxxbc"));
}

TEST(MmstatsV1Source, ReadsFilesWithIdentityAndKinds) {
  FakeHost host;
  host.start_process(100, 250);
  write_field_file(host.dir / "web.py-100-100.mmstats", {{"requests.count", 42}, {"queue.depth", 3}});
  MmstatsV1Source src(host.options());
  ScrapeReport r;
  src.scrape(1000, r);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].message;
  const auto* web = by_app(r, "web");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->id.pid, 100);
  EXPECT_EQ(web->id.host, "h1");
  EXPECT_EQ(web->id.start_time_ms, 1700000000000 + 250 * 1000 / sysconf(_SC_CLK_TCK));
  EXPECT_FALSE(web->fresh);
  ASSERT_EQ(web->samples.size(), 2u);
  EXPECT_EQ(web->samples[0].name, "requests.count");
  EXPECT_EQ(web->samples[0].kind, Kind::Counter);
  EXPECT_EQ(web->samples[0].value, 42);
  EXPECT_EQ(web->samples[0].timestamp_ms, 1000);
  EXPECT_EQ(web->samples[1].kind, Kind::Gauge);
  EXPECT_EQ(src.mapped_file_count(), 1u);
}

TEST(MmstatsV1Source, NewFileAfterFirstScrapeIsFresh) {
  FakeHost host;
  host.start_process(100, 1);
  host.start_process(200, 2);
  write_field_file(host.dir / "a-100-100.mmstats", {{"x.count", 1}});
  MmstatsV1Source src(host.options());
  ScrapeReport first;
  src.scrape(1, first);
  write_field_file(host.dir / "b-200-200.mmstats", {{"x.count", 5}});
  ScrapeReport second;
  src.scrape(2, second);
  EXPECT_FALSE(by_app(second, "a")->fresh);
  EXPECT_TRUE(by_app(second, "b")->fresh);
  ScrapeReport third;
  src.scrape(3, third);
  EXPECT_FALSE(by_app(third, "b")->fresh);
}

TEST(MmstatsV1Source, StartedAfterThresholdIsFresh) {
  FakeHost host;
  host.start_process(100, 100 * sysconf(_SC_CLK_TCK));  // started 100 s after boot
  write_field_file(host.dir / "a-100-100.mmstats", {{"x.count", 1}});
  auto o = host.options();
  o.fresh_if_started_after_ms = 1700000000000 + 50000;
  MmstatsV1Source src(o);
  ScrapeReport r;
  src.scrape(1, r);
  EXPECT_TRUE(by_app(r, "a")->fresh);
  src.set_fresh_if_started_after_ms(1700000000000 + 150000);
  ScrapeReport r2;
  src.scrape(2, r2);
  EXPECT_FALSE(by_app(r2, "a")->fresh);
}

TEST(MmstatsV1Source, DeadPidIsReadOnceMoreThenDropped) {
  FakeHost host;
  host.start_process(100, 1);
  const auto file = host.dir / "a-100-100.mmstats";
  write_field_file(file, {{"x.count", 1}});
  MmstatsV1Source src(host.options());
  ScrapeReport r1;
  src.scrape(1, r1);
  ASSERT_EQ(r1.sources.size(), 1u);
  write_field_file(file, {{"x.count", 7}});  // last increments before dying
  host.kill_process(100);
  ScrapeReport r2;
  src.scrape(2, r2);
  ASSERT_EQ(r2.sources.size(), 1u);
  EXPECT_EQ(r2.sources[0].samples[0].value, 7);
  EXPECT_EQ(src.mapped_file_count(), 0u);
  ScrapeReport r3;
  src.scrape(3, r3);
  EXPECT_TRUE(r3.sources.empty());
  write_field_file(file, {{"x.count", 9}, {"y.count", 1}});  // changed: report again
  ScrapeReport r4;
  src.scrape(4, r4);
  ASSERT_EQ(r4.sources.size(), 1u);
  EXPECT_EQ(r4.sources[0].samples[0].value, 9);
}

// A writer that dies while no agent runs: the next agent's first scan finds its pid gone (no
// /proc start time), and still sends the file under the identity the previous agent used, so
// the server counts its last increments instead of baselining a new source.
TEST(MmstatsV1Source, RestartedAgentSendsADeadWritersFileUnderItsEarlierIdentity) {
  FakeHost host;
  host.start_process(100, 100 * sysconf(_SC_CLK_TCK));  // started 100 s after boot
  const auto file = host.dir / "a-100-100.mmstats";
  write_field_file(file, {{"x.count", 1}});
  auto o = host.options();
  o.start_times_file = (host.root / "start_times").string();
  {
    MmstatsV1Source first_agent(o);
    ScrapeReport r;
    first_agent.scrape(1, r);
    ASSERT_EQ(r.sources.size(), 1u);
    EXPECT_EQ(r.sources[0].id.start_time_ms, 1700000100000);
  }
  write_field_file(file, {{"x.count", 7}});  // last increments, then the writer dies
  host.kill_process(100);
  {
    MmstatsV1Source second_agent(o);
    ScrapeReport r;
    second_agent.scrape(2, r);
    ASSERT_EQ(r.sources.size(), 1u);
    EXPECT_EQ(r.sources[0].id.start_time_ms, 1700000100000);
    EXPECT_EQ(r.sources[0].samples[0].value, 7);
  }
  // Another file under that name (a new inode) is not given the old start time.
  write_field_file(host.dir / "new.tmp", {{"x.count", 2}});
  fs::rename(host.dir / "new.tmp", file);
  MmstatsV1Source third_agent(o);
  ScrapeReport r;
  third_agent.scrape(3, r);
  ASSERT_EQ(r.sources.size(), 1u);
  EXPECT_NE(r.sources[0].id.start_time_ms, 1700000100000);
  EXPECT_TRUE(r.sources[0].start_is_file_birth) << "no start known: the file's birth instead";
}

// A writer born and dead while the agent could record nothing (its spool's disk full, then it
// was stopped): the next agent finds its file with no start time at all. It sends the file's
// birth time in its place, marked so; the server decides from what it applied (it continues
// the process it knows, or counts whole a file born after the agent's previous applied read),
// not the agent from a last-scan time its full disk may not have recorded.
TEST(MmstatsV1Source, DeadWritersFileWithoutStartTimeCarriesItsBirthTime) {
  FakeHost host;
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
  write_field_file(host.dir / "a-100-100.mmstats", {{"x.count", 5}});  // pid 100: no /proc
  auto o = host.options();
  o.fresh_if_started_after_ms = now_ms - 60'000;  // the previous agent's last scan
  {
    MmstatsV1Source src(o);
    ScrapeReport r;
    src.scrape(1, r);
    ASSERT_EQ(r.sources.size(), 1u);
    EXPECT_TRUE(r.sources[0].start_is_file_birth);
    EXPECT_NEAR(static_cast<double>(r.sources[0].id.start_time_ms),
                static_cast<double>(now_ms), 10'000.0);
    EXPECT_FALSE(r.sources[0].fresh) << "the server decides, from what it applied";
  }
}

TEST(MmstatsV1Source, BadFileIsAnErrorForThatFileOnly) {
  FakeHost host;
  host.start_process(100, 1);
  write_field_file(host.dir / "good-100-100.mmstats", {{"x.count", 1}});
  std::ofstream(host.dir / "bad-100-101.mmstats") << "garbage that is not mmstats";
  std::ofstream(host.dir / "empty-100-102.mmstats");
  MmstatsV1Source src(host.options());
  ScrapeReport r;
  src.scrape(1, r);
  ASSERT_EQ(r.sources.size(), 1u);
  EXPECT_EQ(r.sources[0].id.app, "good");
  EXPECT_EQ(r.errors.size(), 2u);
}

TEST(MmstatsV1Source, VanishedFilesAreUnmappedAndValuesReread) {
  FakeHost host;
  host.start_process(100, 1);
  const auto file = host.dir / "a-100-100.mmstats";
  write_field_file(file, {{"x.count", 1}});
  MmstatsV1Source src(host.options());
  ScrapeReport r1;
  src.scrape(1, r1);
  write_field_file(file, {{"x.count", 2}});  // same layout, new value (cached layout reused)
  ScrapeReport r2;
  src.scrape(2, r2);
  ASSERT_EQ(r2.sources.size(), 1u);
  EXPECT_EQ(r2.sources[0].samples[0].value, 2);
  fs::remove(file);
  ScrapeReport r3;
  src.scrape(3, r3);
  EXPECT_TRUE(r3.sources.empty());
  EXPECT_EQ(src.mapped_file_count(), 0u);
}

// A writer truncating a mapped file in place (a restarted process reusing the name) must not
// SIGBUS the agent: the file is an error for that scrape, the others are still read, and it is
// read again once rewritten. (The race past the size check: mapped_guard_test.)
TEST(MmstatsV1Source, FileTruncatedUnderTheMappingIsAnErrorThenReadAgain) {
  FakeHost host;
  host.start_process(100, 1);
  host.start_process(200, 1);
  const fs::path victim = host.dir / "victim-100-100.mmstats";
  write_field_file(victim, {{"a.count", 1}});
  write_field_file(host.dir / "other-200-200.mmstats", {{"b.count", 2}});
  MmstatsV1Source src(host.options());
  ScrapeReport first;
  src.scrape(1, first);
  ASSERT_EQ(first.sources.size(), 2u);
  uint64_t value = 10;
  for (off_t size : {off_t{0}, off_t{20}}) {  // empty; cut inside the first field's value
    SCOPED_TRACE(size);
    ASSERT_EQ(::truncate(victim.c_str(), size), 0);  // same inode, behind the mapping's back
    ScrapeReport r;
    src.scrape(2, r);
    ASSERT_NE(by_app(r, "other"), nullptr);
    EXPECT_EQ(by_app(r, "other")->samples.at(0).value, 2);
    EXPECT_EQ(by_app(r, "victim"), nullptr);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].source, victim.string());
    write_field_file(victim, {{"a.count", ++value}});  // O_TRUNC and rewrite, same name
    ScrapeReport again;
    src.scrape(3, again);
    EXPECT_TRUE(again.errors.empty()) << again.errors[0].message;
    ASSERT_NE(by_app(again, "victim"), nullptr);
    EXPECT_EQ(by_app(again, "victim")->samples.at(0).value, static_cast<double>(value));
  }
}

TEST(MmstatsV1Source, CustomCounterPatternsReplaceDefaults) {
  FakeHost host;
  host.start_process(100, 1);
  write_field_file(host.dir / "a-100-100.mmstats", {{"x.count", 1}, {"hits", 2}});
  auto o = host.options();
  o.counter_patterns = {"hits"};
  MmstatsV1Source src(o);
  ScrapeReport r;
  src.scrape(1, r);
  ASSERT_EQ(r.sources.size(), 1u);
  EXPECT_EQ(r.sources[0].samples[0].kind, Kind::Gauge);
  EXPECT_EQ(r.sources[0].samples[1].kind, Kind::Counter);
}

}  // namespace
}  // namespace statherd::agent
