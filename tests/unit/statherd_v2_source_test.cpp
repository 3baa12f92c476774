// StatherdV2Source: discovery, identity, growing files, dead and reused pids, freshness (fake
// /proc), and files written by the real Python writer (clients/python/statherd).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "agent/agent_config.h"
#include "agent/sources/statherd_v2.h"
#include "statherd_v2_builder.h"

namespace statherd::agent {
namespace {

namespace fs = std::filesystem;
using testing::V2FileBuilder;

constexpr int64_t kBootMs = 1700000000000;

// ms since the epoch of a fake process started `ticks` clock ticks after boot.
int64_t start_ms_of(long ticks) {
  const long hz = ::sysconf(_SC_CLK_TCK) > 0 ? ::sysconf(_SC_CLK_TCK) : 100;
  return kBootMs + ticks * 1000 / hz;
}

void write_bytes(const fs::path& path, const std::vector<uint8_t>& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<long>(b.size()));
}

// Overwrites the file in place (same inode), as the writer's mapping does.
void rewrite_in_place(const fs::path& path, const std::vector<uint8_t>& b) {
  const int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, b.data(), b.size(), 0), static_cast<ssize_t>(b.size()));
  ::close(fd);
}

struct FakeHost {
  fs::path root = fs::temp_directory_path() / ("statherd_v2_source_test_" + std::to_string(getpid()));
  fs::path proc = root / "proc";
  fs::path dir = root / "stats";
  FakeHost() {
    fs::remove_all(root);
    fs::create_directories(proc);
    fs::create_directories(dir);
    std::ofstream(proc / "stat") << "cpu  1 2 3\nbtime " << kBootMs / 1000 << "\nprocesses 5\n";
  }
  ~FakeHost() { fs::remove_all(root); }
  void start_process(int pid, long ticks) {
    fs::create_directories(proc / std::to_string(pid));
    std::ofstream(proc / std::to_string(pid) / "stat")
        << pid << " (py) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 " << ticks << " 100 200\n";
  }
  void kill_process(int pid) { fs::remove_all(proc / std::to_string(pid)); }
  StatherdV2Options options() const {
    StatherdV2Options o;
    o.globs = {(dir / "*.statherd").string()};
    o.host = "h1";
    o.proc_root = proc.string();
    return o;
  }
};

ScrapeReport scrape(StatherdV2Source& source, int64_t now_ms = 1000) {
  ScrapeReport r;
  source.scrape(now_ms, r);
  return r;
}

TEST(StatherdV2Source, DefaultGlob) {
  EXPECT_EQ(default_statherd_v2_glob("/srv/stats", "/t"), "/srv/stats/*.statherd");
  EXPECT_EQ(default_statherd_v2_glob("", "/t/"), "/t/statherd/*.statherd");
  EXPECT_EQ(default_statherd_v2_glob(nullptr, nullptr), "/tmp/statherd/*.statherd");
}

TEST(StatherdV2Source, IdentityComesFromTheHeader) {
  FakeHost host;
  host.start_process(321, 500);
  V2FileBuilder b(321, static_cast<uint64_t>(start_ms_of(500)), "web");
  b.add_number(1, "requests", {{"method", "GET"}}, 17);
  write_bytes(host.dir / "whatever-name.statherd", b.file_bytes());
  StatherdV2Source source(host.options());
  auto r = scrape(source, 5555);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].message;
  ASSERT_EQ(r.sources.size(), 1u);
  const auto& ss = r.sources[0];
  EXPECT_EQ(ss.id.host, "h1");
  EXPECT_EQ(ss.id.app, "web");
  EXPECT_EQ(ss.id.pid, 321);
  EXPECT_EQ(ss.id.start_time_ms, start_ms_of(500));
  EXPECT_EQ(ss.id.path, (host.dir / "whatever-name.statherd").string());
  EXPECT_FALSE(ss.fresh);
  ASSERT_EQ(ss.samples.size(), 1u);
  EXPECT_EQ(ss.samples[0].value, 17);
  EXPECT_EQ(ss.samples[0].timestamp_ms, 5555);
  EXPECT_EQ(source.mapped_file_count(), 1u);
}

TEST(StatherdV2Source, GrowingUsedIsFollowedAndRemappedPastTheMapping) {
  FakeHost host;
  host.start_process(10, 1);
  V2FileBuilder b(10, static_cast<uint64_t>(start_ms_of(1)), "app");
  b.add_number(1, "c0", {}, 0);
  const fs::path path = host.dir / "app-10.statherd";
  write_bytes(path, b.file_bytes());  // one page
  StatherdV2Source source(host.options());
  ASSERT_EQ(scrape(source).sources.at(0).samples.size(), 1u);
  for (int i = 1; i < 200; ++i) b.add_number(1, "c" + std::to_string(i), {}, i);  // > 4 KiB
  rewrite_in_place(path, b.file_bytes());
  auto r = scrape(source);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].message;
  ASSERT_EQ(r.sources.at(0).samples.size(), 200u);
  EXPECT_EQ(r.sources[0].samples[199].name, "c199");
  EXPECT_EQ(r.sources[0].samples[199].value, 199);
}

TEST(StatherdV2Source, DeadProcessIsReadOneLastTime) {
  FakeHost host;
  host.start_process(11, 1);
  V2FileBuilder b(11, static_cast<uint64_t>(start_ms_of(1)), "app");
  b.add_number(1, "c", {}, 5);
  write_bytes(host.dir / "app-11.statherd", b.file_bytes());
  StatherdV2Source source(host.options());
  EXPECT_EQ(scrape(source).sources.size(), 1u);
  host.kill_process(11);
  EXPECT_EQ(scrape(source).sources.size(), 1u);  // the last read
  EXPECT_EQ(source.mapped_file_count(), 0u);
  EXPECT_EQ(scrape(source).sources.size(), 0u);
}

TEST(StatherdV2Source, ReusedPidMeansTheOldFileIsDead) {
  FakeHost host;
  host.start_process(12, 100);
  V2FileBuilder b(12, static_cast<uint64_t>(start_ms_of(100)), "app");
  b.add_number(1, "c", {}, 5);
  write_bytes(host.dir / "app-12.statherd", b.file_bytes());
  StatherdV2Source source(host.options());
  EXPECT_EQ(scrape(source).sources.size(), 1u);
  host.start_process(12, 100 + 60 * 100);  // another process with the same pid, a minute later
  EXPECT_EQ(scrape(source).sources.size(), 1u);
  EXPECT_EQ(scrape(source).sources.size(), 0u);
}

// The wall clock moves against the boot clock (NTP on a VM: btime in /proc/stat moved 27 s in
// an hour). A writer's header start time rests on btime at its start; a long-running agent must
// neither compare it with the btime it read at its own start nor let later drift make the
// writer look like a reused pid: a live writer's unchanged file is read at every scrape.
TEST(StatherdV2Source, BootTimeDriftDoesNotMakeALiveWriterLookDead) {
  FakeHost host;
  auto set_btime = [&](int64_t seconds) {
    std::ofstream(host.proc / "stat") << "cpu  1 2 3\nbtime " << seconds << "\nprocesses 5\n";
  };
  const long hz = sysconf(_SC_CLK_TCK);
  host.start_process(12, hz);  // a writer the agent reads from its start (and so reads btime)
  V2FileBuilder early(12, static_cast<uint64_t>(start_ms_of(hz)), "early");
  write_bytes(host.dir / "early-12.statherd", early.file_bytes());
  StatherdV2Source source(host.options());
  EXPECT_EQ(scrape(source).sources.size(), 1u);
  set_btime(kBootMs / 1000 + 27);  // an hour later
  host.start_process(13, 3600 * hz);
  V2FileBuilder b(13, static_cast<uint64_t>(kBootMs + 27'000 + 3'600'000), "app");
  b.add_number(1, "c", {}, 5);
  write_bytes(host.dir / "app-13.statherd", b.file_bytes());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(scrape(source).sources.size(), 2u) << "scrape " << i;
  set_btime(kBootMs / 1000 + 54);  // and it drifts on while the writers run
  for (int i = 0; i < 2; ++i) EXPECT_EQ(scrape(source).sources.size(), 2u) << "later " << i;
  host.start_process(13, 3700 * hz);  // the pid reused by another process: the file is dead
  EXPECT_EQ(scrape(source).sources.size(), 2u);
  EXPECT_EQ(scrape(source).sources.size(), 1u);
}

TEST(StatherdV2Source, FileAppearingAfterTheFirstScrapeIsFresh) {
  FakeHost host;
  // /proc start times are good to about a second (file_is_fresh allows 1 s): 3 s apart.
  const long hz = sysconf(_SC_CLK_TCK);
  host.start_process(13, 1);
  host.start_process(14, 3 * hz);
  V2FileBuilder old_one(13, static_cast<uint64_t>(start_ms_of(1)), "app");
  write_bytes(host.dir / "app-13.statherd", old_one.file_bytes());
  StatherdV2Source source(host.options());
  auto first = scrape(source);
  ASSERT_EQ(first.sources.size(), 1u);
  EXPECT_FALSE(first.sources[0].fresh);
  V2FileBuilder new_one(14, static_cast<uint64_t>(start_ms_of(3 * hz)), "app");
  write_bytes(host.dir / "app-14.statherd", new_one.file_bytes());
  auto second = scrape(source);
  ASSERT_EQ(second.sources.size(), 2u);
  EXPECT_FALSE(second.sources[0].fresh);  // sorted by path: app-13 first
  EXPECT_TRUE(second.sources[1].fresh);
  source.set_fresh_if_started_after_ms(start_ms_of(2 * hz));
  StatherdV2Source restarted([&] {
    auto o = host.options();
    o.fresh_if_started_after_ms = start_ms_of(2 * hz);
    return o;
  }());
  auto after_restart = scrape(restarted);
  ASSERT_EQ(after_restart.sources.size(), 2u);
  EXPECT_FALSE(after_restart.sources[0].fresh);
  EXPECT_TRUE(after_restart.sources[1].fresh);  // started after the persisted last scan
}

// A container restarts its worker: the same pid, the same file name, a new process. The agent
// read the old process's header at its previous scrape, so everything under the new header was
// counted since: fresh, whatever the start times say (they rest on btime, whole seconds, and
// can put the new start before the agent's previous read).
TEST(StatherdV2Source, ANewWriterUnderAPathReadAtThePreviousScrapeIsFresh) {
  for (bool in_place : {true, false}) {
    SCOPED_TRACE(in_place ? "rewritten in place" : "replaced by a new file");
    FakeHost host;
    const long hz = sysconf(_SC_CLK_TCK);
    host.start_process(15, hz);
    V2FileBuilder old_writer(15, static_cast<uint64_t>(start_ms_of(hz)), "app");
    old_writer.add_number(1, "c", {}, 500);
    write_bytes(host.dir / "app-15.statherd", old_writer.file_bytes());
    StatherdV2Source source(host.options());
    ASSERT_EQ(scrape(source).sources.size(), 1u);
    auto again = scrape(source);
    ASSERT_EQ(again.sources.size(), 1u);
    EXPECT_FALSE(again.sources[0].fresh);
    host.start_process(15, hz + hz / 2);  // the pid again, half a second later
    V2FileBuilder new_writer(15, static_cast<uint64_t>(start_ms_of(hz + hz / 2)), "app");
    new_writer.add_number(1, "c", {}, 7);
    if (in_place) {
      rewrite_in_place(host.dir / "app-15.statherd", new_writer.file_bytes());
    } else {
      fs::remove(host.dir / "app-15.statherd");
      write_bytes(host.dir / "app-15.statherd", new_writer.file_bytes());
    }
    auto after = scrape(source);
    ASSERT_EQ(after.sources.size(), 1u);
    EXPECT_EQ(after.sources[0].id.start_time_ms, start_ms_of(hz + hz / 2));
    EXPECT_TRUE(after.sources[0].fresh);
    auto next = scrape(source);
    ASSERT_EQ(next.sources.size(), 1u);
    EXPECT_FALSE(next.sources[0].fresh) << "fresh once, at the first read of the new writer";
  }
}

TEST(StatherdV2Source, BadFileIsAnErrorForThatFileOnly) {
  FakeHost host;
  host.start_process(15, 1);
  V2FileBuilder good(15, static_cast<uint64_t>(start_ms_of(1)), "app");
  good.add_number(2, "g", {}, 1);
  write_bytes(host.dir / "a-good.statherd", good.file_bytes());
  write_bytes(host.dir / "b-bad.statherd", std::vector<uint8_t>(4096, 0xAB));
  write_bytes(host.dir / "c-short.statherd", std::vector<uint8_t>(10, 0));
  StatherdV2Source source(host.options());
  auto r = scrape(source);
  ASSERT_EQ(r.sources.size(), 1u);
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_NE(r.errors[0].source.find("b-bad"), std::string::npos);
  EXPECT_NE(r.errors[0].message.find("magic"), std::string::npos);
  EXPECT_NE(r.errors[1].source.find("c-short"), std::string::npos);
}

// A file truncated in place while mapped must not SIGBUS the agent: an error for that file,
// the others still read, and read again once rewritten. (The race past the size check:
// mapped_guard_test.)
TEST(StatherdV2Source, FileTruncatedUnderTheMappingIsAnErrorThenReadAgain) {
  FakeHost host;
  host.start_process(20, 1);
  host.start_process(21, 1);
  auto file_of = [](int pid, const std::string& app, int records, double value) {
    V2FileBuilder b(static_cast<uint64_t>(pid), static_cast<uint64_t>(start_ms_of(1)), app);
    for (int i = 0; i < records; ++i) b.add_number(1, "c" + std::to_string(i), {}, value);
    return b.file_bytes();
  };
  const fs::path victim = host.dir / "victim-20.statherd";
  write_bytes(victim, file_of(20, "victim", 200, 1));  // > 4 KiB: more than one page
  write_bytes(host.dir / "other-21.statherd", file_of(21, "other", 1, 2));
  StatherdV2Source source(host.options());
  ASSERT_EQ(scrape(source).sources.size(), 2u);
  double value = 10;
  for (off_t size : {off_t{0}, off_t{4096 + 300}}) {  // empty; cut inside the records
    SCOPED_TRACE(size);
    ASSERT_EQ(::truncate(victim.c_str(), size), 0);  // same inode, behind the mapping's back
    auto r = scrape(source);
    ASSERT_EQ(r.sources.size(), 1u);
    EXPECT_EQ(r.sources[0].id.app, "other");
    EXPECT_EQ(r.sources[0].samples.at(0).value, 2);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].source, victim.string());
    write_bytes(victim, file_of(20, "victim", 200, ++value));  // O_TRUNC and rewrite
    auto again = scrape(source);
    EXPECT_TRUE(again.errors.empty()) << again.errors[0].message;
    ASSERT_EQ(again.sources.size(), 2u);
    for (const auto& ss : again.sources) {
      if (ss.id.app != "victim") continue;
      EXPECT_EQ(ss.samples.at(199).value, value);
    }
  }
}

TEST(StatherdV2Source, OneShotKeepsNothingMappedAndNeedsNoProc) {
  FakeHost host;
  V2FileBuilder b(16, 123456, "app");
  b.add_text("version", "9");
  write_bytes(host.dir / "app-16.statherd", b.file_bytes());
  auto o = host.options();
  o.one_shot = true;
  o.proc_root = "/nonexistent";
  StatherdV2Source source(o);
  auto r = scrape(source);
  ASSERT_EQ(r.sources.size(), 1u);
  EXPECT_EQ(r.sources[0].id.pid, 16);
  EXPECT_EQ(r.sources[0].id.start_time_ms, 123456);  // from the header
  EXPECT_EQ(r.sources[0].samples.at(0).text, "9");
  EXPECT_EQ(source.mapped_file_count(), 0u);
}

// The real writer: /usr/bin/python3 with clients/python/statherd writes every kind; the agent
// reads exactly what it wrote (the process has exited: its file is read one last time).
TEST(StatherdV2Source, ReadsFilesWrittenByThePythonWriter) {
  FakeHost host;
  const fs::path script = host.root / "writer.py";
  std::ofstream(script) << "import statherd\n"
                           "c = statherd.Counter('requests', labelnames=('method', 'code'))\n"
                           "c.labels('GET', '200').inc(41)\n"
                           "c.labels('GET', '200').inc()\n"
                           "g = statherd.Gauge('queue.depth')\n"
                           "g.set(-2.5)\n"
                           "i = statherd.Info('version')\n"
                           "i.set('1.2.3')\n"
                           "h = statherd.Histogram('latency')\n"
                           "for k in range(1000):\n"
                           "    h.observe((k * 7919 % 1000) / 100.0)\n"
                           "statherd.Histogram('idle')\n"
                           "print(statherd.stat_file_path())\n";
  const std::string command = "cd '" + host.root.string() + "' && STATHERD_DIR='" + host.dir.string() +
                              "' STATHERD_APP=pywriter PYTHONPATH='" STATHERD_SOURCE_DIR "/clients/python' "
                              "/usr/bin/python3 '" + script.string() + "'";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char line[4096] = {};
  const bool got_line = std::fgets(line, sizeof line, pipe) != nullptr;
  ASSERT_EQ(::pclose(pipe), 0) << command;
  ASSERT_TRUE(got_line);
  auto o = host.options();
  o.proc_root = "/proc";
  StatherdV2Source source(o);
  auto r = scrape(source);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].source << ": " << r.errors[0].message;
  ASSERT_EQ(r.sources.size(), 1u);
  const auto& ss = r.sources[0];
  EXPECT_EQ(ss.id.app, "pywriter");
  EXPECT_EQ(ss.id.path + "\n", std::string(line));
  EXPECT_GT(ss.id.pid, 0);
  EXPECT_GT(ss.id.start_time_ms, 0);
  ASSERT_EQ(ss.samples.size(), 5u);
  EXPECT_EQ(ss.samples[0].name, "requests");
  EXPECT_EQ(ss.samples[0].kind, Kind::Counter);
  EXPECT_EQ(ss.samples[0].value, 42);
  EXPECT_EQ(ss.samples[0].tags, (Tags{{"code", "200"}, {"method", "GET"}}));
  EXPECT_EQ(ss.samples[1].kind, Kind::Gauge);
  EXPECT_EQ(ss.samples[1].value, -2.5);
  EXPECT_EQ(ss.samples[2].kind, Kind::Text);
  EXPECT_EQ(ss.samples[2].text, "1.2.3");
  ASSERT_EQ(ss.samples[3].kind, Kind::Distribution);
  Sketch expected;
  for (int k = 0; k < 1000; ++k) expected.add((k * 7919 % 1000) / 100.0);
  const Sketch& got = ss.samples[3].dist->sketch;
  EXPECT_EQ(got.count(), 1000);
  EXPECT_EQ(got.sum(), expected.sum());
  EXPECT_EQ(got.min(), 0);
  EXPECT_EQ(got.max(), 9.99);
  EXPECT_EQ(got.zero_count(), expected.zero_count());
  EXPECT_EQ(got.positive(), expected.positive());
  EXPECT_EQ(got.quantile(0.99), expected.quantile(0.99));
  ASSERT_EQ(ss.samples[4].kind, Kind::Distribution);
  EXPECT_TRUE(ss.samples[4].dist->sketch.empty());
}

TEST(StatherdV2Config, GlobsFromYamlAndRepeatableFlagThatReplacesThem) {
  FakeHost host;
  const fs::path yaml = host.root / "agent.yaml";
  std::ofstream(yaml) << "statherd_v2:\n  globs: [\"/a/*.statherd\", \"/b/*.statherd\"]\n";
  const char* from_file[] = {"statherd-agent", "--once", "--config", yaml.c_str()};
  auto cli = parse_command_line(4, from_file);
  ASSERT_TRUE(cli.ok());
  LoadedConfig loaded = load_agent_config(*cli);
  ASSERT_TRUE(loaded.errors.empty()) << loaded.errors[0];
  EXPECT_EQ(loaded.config.v2_globs, (std::vector<std::string>{"/a/*.statherd", "/b/*.statherd"}));
  const char* flags[] = {"statherd-agent", "--once", "--config", yaml.c_str(), "--v2-glob", "/c/*",
                         "--v2-glob=/d/*"};
  auto cli2 = parse_command_line(7, flags);
  ASSERT_TRUE(cli2.ok());
  EXPECT_EQ(load_agent_config(*cli2).config.v2_globs, (std::vector<std::string>{"/c/*", "/d/*"}));
  std::ofstream(yaml) << "statherd_v2:\n  glob: x\n";
  auto typo = load_agent_config(*cli);
  ASSERT_FALSE(typo.errors.empty());
  EXPECT_NE(typo.errors[0].find("glob"), std::string::npos);
}

}  // namespace
}  // namespace statherd::agent
