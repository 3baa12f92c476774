// prometheus_client multiprocess files: the parser against bytes written by the real library
// (Debian python3-prometheus-client, run with /usr/bin/python3), hand-built files in the newer
// layout (value + timestamp), corrupt and hostile input, and the source's aggregation.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "agent/sample_guard.h"
#include "agent/sources/prom_multiproc.h"

namespace statherd::agent {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// A .db file as prometheus_client writes it; with_timestamp: the newer 16-byte value layout.
struct HandEntry {
  std::string key;
  double value;
  double timestamp = 0;
};
std::vector<uint8_t> db_bytes(const std::vector<HandEntry>& entries, bool with_timestamp,
                              size_t capacity = 4096) {
  std::vector<uint8_t> b(capacity, 0);
  uint32_t used = 8;
  auto put = [&](const void* p, size_t n) {
    std::memcpy(b.data() + used, p, n);
    used += static_cast<uint32_t>(n);
  };
  for (const auto& e : entries) {
    uint32_t len = static_cast<uint32_t>(e.key.size());
    put(&len, 4);
    put(e.key.data(), len);
    std::string pad(8 - (len + 4) % 8, ' ');
    put(pad.data(), pad.size());
    put(&e.value, 8);
    if (with_timestamp) put(&e.timestamp, 8);
  }
  std::memcpy(b.data(), &used, 4);
  return b;
}

class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "prom_multiproc_test.XXXXXX").string();
    path_ = ::mkdtemp(templ.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Runs one /usr/bin/python3 process that writes metrics with prometheus_client into dir.
void run_writer(const fs::path& dir, int k) {
  std::ostringstream script;
  script << "from prometheus_client import Counter, Gauge, Histogram, Summary\n"
            "k = " << k << "\n"
            "jobs = Counter('jobs', 'Jobs done', ['queue'])\n"
            "jobs.labels('a').inc(k)\n"
            "jobs.labels('b\\u00e9').inc(10 * k)\n"
            "for mode in ['all', 'liveall', 'min', 'max', 'sum', 'livesum', 'livemin']:\n"
            "    Gauge('g_' + mode, 'gauge', multiprocess_mode=mode).set(k)\n"
            "h = Histogram('lat', 'latency', buckets=[0.1, 1, 10])\n"
            "for v in [0.05, 0.5 * k, 5]: h.observe(v)\n"
            "Summary('size', 'size').observe(k)\n";
  fs::path py = dir / ("writer" + std::to_string(k) + ".py.txt");
  std::ofstream(py) << script.str();
  std::string cmd = "PROMETHEUS_MULTIPROC_DIR='" + dir.string() + "' /usr/bin/python3 '" +
                    py.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  fs::remove(py);
}

std::map<std::string, const Sample*> by_name_and_tags(const SourceSamples& ss) {
  std::map<std::string, const Sample*> out;
  for (const auto& s : ss.samples) {
    std::string key = s.name;
    for (const auto& [k, v] : s.tags) key += "," + k + "=" + v;
    out[key] = &s;
  }
  return out;
}

ScrapeReport scrape_dir(PromMultiprocSource& source) {
  ScrapeReport report;
  source.scrape(1000, report);
  return report;
}

TEST(PromDbKey, ParsesSortedLabelsAndEscapes) {
  auto key = parse_prom_db_key(
      R"(["m", "m_total", {"z": "1", "a": "x\"y\\u00e9\ud83d\ude00"}, "help \n"])");
  ASSERT_TRUE(key.ok()) << key.error().to_string();
  EXPECT_EQ(key->metric, "m");
  EXPECT_EQ(key->sample, "m_total");
  ASSERT_EQ(key->labels.size(), 2u);
  EXPECT_EQ(key->labels[0].first, "a");
  EXPECT_EQ(key->labels[0].second, "x\"y\\u00e9\xF0\x9F\x98\x80");
  EXPECT_EQ(key->help, "help \n");
  EXPECT_FALSE(parse_prom_db_key(R"(["m", "m", {"a": 1}, ""])").ok());
  EXPECT_FALSE(parse_prom_db_key(R"(["m", "m", {}, "")").ok());
  EXPECT_FALSE(parse_prom_db_key(R"(["m", "m", {}, "\u12"])").ok());
}

TEST(PromDbFileName, SplitsTypeModeAndPid) {
  auto c = parse_prom_db_file_name("counter_123.db");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->type, "counter");
  EXPECT_EQ(c->pid, "123");
  auto g = parse_prom_db_file_name("gauge_livesum_77.db");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->mode, "livesum");
  EXPECT_EQ(g->pid, "77");
  EXPECT_FALSE(parse_prom_db_file_name("gauge_all.db").ok());
  EXPECT_FALSE(parse_prom_db_file_name("counter.db").ok());
  EXPECT_EQ(parse_prom_multiproc_dir_spec("web=/run/prom/").app, "web");
  EXPECT_EQ(parse_prom_multiproc_dir_spec("web=/run/prom/").path, "/run/prom");
  EXPECT_EQ(parse_prom_multiproc_dir_spec("/a=b/c").path, "/a=b/c");
}

TEST(PromDb, ParsesBytesWrittenByPrometheusClient) {
  TempDir dir;
  run_writer(dir.path(), 3);
  auto counter_files = std::vector<fs::path>();
  for (const auto& e : fs::directory_iterator(dir.path()))
    if (e.path().filename().string().rfind("counter_", 0) == 0) counter_files.push_back(e.path());
  ASSERT_EQ(counter_files.size(), 1u);
  auto bytes = read_bytes(counter_files[0]);
  auto entries = parse_prom_db(bytes);
  ASSERT_TRUE(entries.ok()) << entries.error().to_string();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].key.sample, "jobs_total");
  EXPECT_EQ((*entries)[0].key.labels, (Tags{{"queue", "a"}}));
  EXPECT_EQ((*entries)[0].value, 3);
  EXPECT_EQ((*entries)[1].key.labels, (Tags{{"queue", "b\xC3\xA9"}}));
  EXPECT_EQ((*entries)[1].value, 30);
  // Every truncation is an error or a shorter parse, never a read past the span.
  for (size_t n = 0; n < 200; ++n) {
    auto cut = parse_prom_db(std::span<const uint8_t>(bytes.data(), n));
    if (n < 8) {
      EXPECT_FALSE(cut.ok());
    }
  }
}

TEST(PromDb, DetectsTheTimestampLayout) {
  const std::string key = R"(["t", "t", {}, "h"])";
  auto with_ts = parse_prom_db(db_bytes({{key, 4.5, 1700000000.5}, {key, 1, 2}}, true));
  ASSERT_TRUE(with_ts.ok()) << with_ts.error().to_string();
  ASSERT_EQ(with_ts->size(), 2u);
  EXPECT_EQ((*with_ts)[0].value, 4.5);
  EXPECT_EQ((*with_ts)[0].timestamp, 1700000000.5);
  auto without = parse_prom_db(db_bytes({{key, 4.5}, {key, 1}}, false));
  ASSERT_TRUE(without.ok());
  EXPECT_EQ((*without)[1].value, 1);
  EXPECT_EQ((*without)[1].timestamp, 0);
}

TEST(PromDb, RejectsCorruptAndHostileFiles) {
  const std::string key = R"(["t", "t", {}, "h"])";
  auto good = db_bytes({{key, 1}}, false);
  auto bad_used = good;
  uint32_t huge = 1u << 31;
  std::memcpy(bad_used.data(), &huge, 4);
  EXPECT_FALSE(parse_prom_db(bad_used).ok());
  auto bad_len = good;
  uint32_t len = 5000;
  std::memcpy(bad_len.data() + 8, &len, 4);
  auto r = parse_prom_db(bad_len);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("offset 8"), std::string::npos) << r.error().message;
  auto not_json = good;
  not_json[12] = 'x';
  EXPECT_FALSE(parse_prom_db(not_json).ok());
}

TEST(PromMultiprocSource, AggregatesLikeMultiProcessCollector) {
  TempDir dir;
  for (int k = 1; k <= 3; ++k) run_writer(dir.path(), k);
  PromMultiprocSource source({{{dir.path().string(), "web"}}, "h1", false});
  ScrapeReport report = scrape_dir(source);
  ASSERT_TRUE(report.errors.empty()) << report.errors[0].message;
  ASSERT_EQ(report.sources.size(), 1u);
  const SourceSamples& ss = report.sources[0];
  EXPECT_EQ(ss.id.app, "web");
  EXPECT_EQ(ss.id.pid, -1);
  EXPECT_EQ(ss.id.path, dir.path().string());
  auto m = by_name_and_tags(ss);
  ASSERT_TRUE(m.count("jobs_total,queue=a"));
  EXPECT_EQ(m["jobs_total,queue=a"]->kind, Kind::Counter);
  EXPECT_EQ(m["jobs_total,queue=a"]->value, 6);
  EXPECT_EQ(m["g_min"]->value, 1);
  EXPECT_EQ(m["g_livemin"]->value, 1);
  EXPECT_EQ(m["g_max"]->value, 3);
  EXPECT_EQ(m["g_sum"]->value, 6);
  EXPECT_EQ(m["g_livesum"]->value, 6);
  int all = 0, liveall = 0;
  for (const auto& s : ss.samples) {
    all += s.name == "g_all";
    liveall += s.name == "g_liveall";
    if (s.name == "g_all") {
      EXPECT_EQ(s.tags[0].first, "pid");
    }
  }
  EXPECT_EQ(all, 3);
  EXPECT_EQ(liveall, 3);
  const Distribution& lat = *m["lat"]->dist;
  EXPECT_EQ(lat.form, Distribution::Form::Buckets);
  EXPECT_EQ(lat.bucket_upper_bounds, (std::vector<double>{0.1, 1, 10, INFINITY}));
  // observations 0.05, 0.5k, 5 for k = 1..3: 0.05 x3 | 0.5 | 1.0, 1.5, 5 x3 | none
  EXPECT_EQ(lat.bucket_counts, (std::vector<double>{3, 2, 4, 0}));
  EXPECT_EQ(lat.count, 9);
  EXPECT_NEAR(lat.sum, 0.15 + 3 + 15, 1e-9);
  const Distribution& size = *m["size"]->dist;
  EXPECT_EQ(size.form, Distribution::Form::Summary);
  EXPECT_EQ(size.count, 3);
  EXPECT_EQ(size.sum, 6);
}

// Issue #14, hostile review: one of two workers observed NaN once, so the directory's _sum is
// NaN for the life of that file and the agent dropped the whole histogram (600 of 2,101
// observations counted). The directory's sum is now unknown; its count and buckets are exact.
TEST(PromMultiprocSource, OneFilesNaNSumMakesTheDirectorysSumUnknownNotTheHistogramGone) {
  TempDir dir;
  for (int k = 1; k <= 2; ++k) {
    fs::path py = dir.path() / ("nan" + std::to_string(k) + ".py.txt");
    std::ofstream(py) << "from prometheus_client import Histogram, Summary\n"
                         "h = Histogram('lat', 'latency', buckets=[0.01, 0.1])\n"
                         "for _ in range(300): h.observe(0.003)\n"
                         "for _ in range(2): h.observe(0.05)\n"
                      << (k == 2 ? "h.observe(float('nan'))\n"
                                   "Summary('size', 'size').observe(float('inf'))\n"
                                 : "Summary('size', 'size').observe(2)\n");
    std::string cmd = "PROMETHEUS_MULTIPROC_DIR='" + dir.path().string() +
                      "' /usr/bin/python3 '" + py.string() + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    fs::remove(py);
  }
  PromMultiprocSource source({{{dir.path().string(), "web"}}, "h1", false});
  ScrapeReport report = scrape_dir(source);
  ASSERT_TRUE(report.errors.empty()) << report.errors[0].message;
  ASSERT_EQ(report.sources.size(), 1u);
  SourceSamples ss = report.sources[0];
  std::vector<SourceError> errors;
  ASSERT_TRUE(guard_source(ss, errors));
  EXPECT_TRUE(errors.empty()) << errors[0].message;
  auto m = by_name_and_tags(ss);
  ASSERT_TRUE(m.count("lat"));
  const Distribution& lat = *m["lat"]->dist;
  EXPECT_TRUE(lat.sum_unknown);
  EXPECT_EQ(lat.bucket_counts, (std::vector<double>{600, 4, 0}));  // NaN is in no bucket
  EXPECT_EQ(lat.count, 604);
  ASSERT_TRUE(m.count("size"));
  EXPECT_TRUE(m["size"]->dist->sum_unknown);
  EXPECT_EQ(m["size"]->dist->count, 2);
}

TEST(PromMultiprocSource, MostRecentUsesTheTimestamp) {
  TempDir dir;
  const std::string key = R"(["mr", "mr", {"pid": "9"}, "h"])";
  write_bytes(dir.path() / "gauge_mostrecent_1.db", db_bytes({{key, 10, 200}}, true));
  write_bytes(dir.path() / "gauge_mostrecent_2.db", db_bytes({{key, 20, 100}}, true));
  write_bytes(dir.path() / "gauge_livemostrecent_3.db", db_bytes({{key, 30, 0}}, true));
  PromMultiprocSource source({{{dir.path().string(), ""}}, "h1", false});
  ScrapeReport report = scrape_dir(source);
  ASSERT_EQ(report.sources.size(), 1u);
  ASSERT_EQ(report.sources[0].samples.size(), 1u);
  EXPECT_EQ(report.sources[0].samples[0].value, 10);
  EXPECT_TRUE(report.sources[0].samples[0].tags.empty());  // pid dropped like the collector
}

TEST(PromMultiprocSource, CorruptFileIsAnErrorForThatFileOnly) {
  TempDir dir;
  const std::string key = R"(["c", "c_total", {}, "h"])";
  write_bytes(dir.path() / "counter_1.db", db_bytes({{key, 5}}, false));
  auto bad = db_bytes({{key, 7}}, false);
  bad[13] = '{';
  write_bytes(dir.path() / "counter_2.db", bad);
  write_bytes(dir.path() / "counter_3.db", {1, 2, 3});
  write_bytes(dir.path() / "weird.db", db_bytes({{key, 7}}, false));
  PromMultiprocSource source({{{dir.path().string(), ""}}, "h1", false});
  ScrapeReport report = scrape_dir(source);
  EXPECT_EQ(report.errors.size(), 2u);  // counter_2 (bad key), weird.db (name); counter_3 waits
  ASSERT_EQ(report.sources.size(), 1u);
  ASSERT_EQ(report.sources[0].samples.size(), 1u);
  EXPECT_EQ(report.sources[0].samples[0].value, 5);
}

TEST(PromMultiprocSource, SteadyStateReadsNewValuesAppendedEntriesAndKeepsDeletedCounters) {
  TempDir dir;
  const std::string c = R"(["c", "c_total", {}, "h"])", g = R"(["g", "g", {}, "h"])";
  const std::string c2 = R"(["c", "c_total", {"x": "1"}, "h"])";
  fs::path one = dir.path() / "counter_1.db", two = dir.path() / "counter_2.db";
  write_bytes(one, db_bytes({{c, 5}}, false));
  write_bytes(two, db_bytes({{c, 7}}, false));
  write_bytes(dir.path() / "gauge_livesum_2.db", db_bytes({{g, 3}}, false));
  PromMultiprocSource source({{{dir.path().string(), ""}}, "h1", false});
  auto first = scrape_dir(source);
  ASSERT_EQ(first.sources.size(), 1u);
  EXPECT_EQ(by_name_and_tags(first.sources[0])["c_total"]->value, 12);
  EXPECT_EQ(source.mapped_file_count(), 3u);
  {  // the writer rewrites values in place and appends an entry (same file, same inode)
    auto grown = db_bytes({{c, 6}, {c2, 1}}, false);
    std::fstream f(one, std::ios::binary | std::ios::in | std::ios::out);
    f.write(reinterpret_cast<const char*>(grown.data()), static_cast<std::streamsize>(grown.size()));
  }
  auto second = scrape_dir(source);
  auto m = by_name_and_tags(second.sources[0]);
  EXPECT_EQ(m["c_total"]->value, 13);
  EXPECT_EQ(m["c_total,x=1"]->value, 1);
  fs::remove(two);  // a deleted counter file keeps counting; its gauge goes
  fs::remove(dir.path() / "gauge_livesum_2.db");
  auto third = scrape_dir(source);
  m = by_name_and_tags(third.sources[0]);
  EXPECT_EQ(m["c_total"]->value, 13);
  EXPECT_EQ(m.count("g"), 0u);
  EXPECT_EQ(source.mapped_file_count(), 1u);
}

// A known file is re-read without a stat(), straight from its mapping, so a truncation in
// place reaches the SIGBUS guard: the file is an error (dropped without retiring), the other
// files still count, and it is read afresh once rewritten.
TEST(PromMultiprocSource, FileTruncatedUnderTheMappingIsAnErrorThenReadAgain) {
  TempDir dir;
  const std::string c = R"(["c", "c_total", {}, "h"])";
  std::vector<HandEntry> many;  // values on three pages
  for (int i = 0; i < 200; ++i)
    many.push_back({R"(["c", "c_total", {"i": ")" + std::to_string(i) + R"("}, "h"])", 1});
  const fs::path victim = dir.path() / "counter_2.db";
  write_bytes(dir.path() / "counter_1.db", db_bytes({{c, 5}}, false));
  write_bytes(victim, db_bytes({{c, 7}}, false));
  PromMultiprocSource source({{{dir.path().string(), ""}}, "h1", false});
  ASSERT_EQ(by_name_and_tags(scrape_dir(source).sources.at(0))["c_total"]->value, 12);

  ASSERT_EQ(::truncate(victim.c_str(), 0), 0);  // same inode, behind the mapping's back
  auto r = scrape_dir(source);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].source, victim.string());
  EXPECT_NE(r.errors[0].message.find("SIGBUS"), std::string::npos) << r.errors[0].message;
  EXPECT_EQ(by_name_and_tags(r.sources.at(0))["c_total"]->value, 5);

  write_bytes(victim, db_bytes(many, false, 3 * 4096));  // O_TRUNC and rewrite, same name
  r = scrape_dir(source);
  EXPECT_TRUE(r.errors.empty()) << r.errors[0].message;
  EXPECT_EQ(by_name_and_tags(r.sources.at(0))["c_total,i=199"]->value, 1);

  ASSERT_EQ(::truncate(victim.c_str(), 4096 + 100), 0);  // `used` stays readable, values do not
  r = scrape_dir(source);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].source, victim.string());
  EXPECT_EQ(by_name_and_tags(r.sources.at(0)).count("c_total,i=199"), 0u);
  EXPECT_EQ(by_name_and_tags(r.sources.at(0))["c_total"]->value, 5);

  write_bytes(victim, db_bytes({{c, 9}}, false));
  r = scrape_dir(source);
  EXPECT_TRUE(r.errors.empty()) << r.errors[0].message;
  EXPECT_EQ(by_name_and_tags(r.sources.at(0))["c_total"]->value, 14);
}

// After the SIGBUS drop the file is met again while still empty: it is a file being created
// (nothing to read yet), not a mapping to read (this crashed the agent with SIGSEGV).
TEST(PromMultiprocSource, FileLeftEmptyAfterATruncationIsSkippedUntilWritten) {
  TempDir dir;
  const std::string c = R"(["c", "c_total", {}, "h"])";
  const fs::path victim = dir.path() / "counter_2.db";
  write_bytes(dir.path() / "counter_1.db", db_bytes({{c, 5}}, false));
  write_bytes(victim, db_bytes({{c, 7}}, false));
  PromMultiprocSource source({{{dir.path().string(), ""}}, "h1", false});
  ASSERT_EQ(by_name_and_tags(scrape_dir(source).sources.at(0))["c_total"]->value, 12);
  ASSERT_EQ(::truncate(victim.c_str(), 0), 0);
  ASSERT_EQ(scrape_dir(source).errors.size(), 1u);  // the SIGBUS drop
  for (int i = 0; i < 2; ++i) {  // still empty: skipped, the other file still counts
    auto r = scrape_dir(source);
    EXPECT_TRUE(r.errors.empty()) << r.errors[0].message;
    EXPECT_EQ(by_name_and_tags(r.sources.at(0))["c_total"]->value, 5);
  }
  write_bytes(victim, db_bytes({{c, 2}}, false));
  EXPECT_EQ(by_name_and_tags(scrape_dir(source).sources.at(0))["c_total"]->value, 7);
}

TEST(PromMultiprocSource, OneShotMatchesMappedScrape) {
  TempDir dir;
  for (int k = 1; k <= 2; ++k) run_writer(dir.path(), k);
  PromMultiprocSource mapped({{{dir.path().string(), ""}}, "h1", false});
  PromMultiprocSource once({{{dir.path().string(), ""}}, "h1", true});
  auto a = scrape_dir(mapped), b = scrape_dir(once);
  ASSERT_EQ(a.sources.size(), 1u);
  ASSERT_EQ(b.sources.size(), 1u);
  auto ma = by_name_and_tags(a.sources[0]), mb = by_name_and_tags(b.sources[0]);
  ASSERT_EQ(ma.size(), mb.size());
  for (const auto& [k, s] : ma) {
    ASSERT_TRUE(mb.count(k)) << k;
    EXPECT_TRUE(*s == *mb[k]) << k;
  }
  EXPECT_EQ(once.mapped_file_count(), 0u);
}

}  // namespace
}  // namespace statherd::agent
