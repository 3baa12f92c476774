#include "server/wal.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>

#include "engine_test_util.h"
#include "server/engine.h"

namespace statherd::server {
namespace {

using namespace testing;
constexpr int64_t T0 = 1'700'000'000'000;
constexpr int64_t S0 = T0 / 1000;

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/statherd-wal-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

EngineOptions opts(const std::string& dir) {
  EngineOptions o;
  o.state_dir = dir + "/state";
  o.fsync = false;
  o.snapshot_every = std::chrono::milliseconds(60'000);  // the tests' clock: a snapshot at 60 s
  return o;
}

std::string counter_batch(uint64_t seq, double a, double b, int64_t ts) {
  return batch("agent", seq, {source(1, {counter("req", a, ts)}), source(2, {counter("req", b, ts)})});
}

using Key = std::tuple<int64_t, bool, int, std::string, std::string>;
std::map<Key, double> as_map(const std::vector<IntervalOutput>& outs) {
  std::map<Key, double> m;
  for (const auto& o : outs)
    for (const auto& p : flat_points(o))
      m[{o.start_s, o.reemit, static_cast<int>(p.level), p.metric, p.stat}] = p.value;
  return m;
}

TEST(Wal, Crc32MatchesIeeeCheckValue) { EXPECT_EQ(crc32_ieee("123456789"), 0xCBF43926u); }

// The word-at-a-time CRC against the definition, bit by bit, at every length and alignment
// around the 8-byte steps.
TEST(Wal, Crc32MatchesTheBitwiseDefinitionAtEveryLengthAndOffset) {
  auto bitwise = [](std::string_view bytes) {
    uint32_t c = 0xFFFFFFFFu;
    for (char ch : bytes) {
      c ^= static_cast<uint8_t>(ch);
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
  };
  std::string data;
  uint32_t x = 12345;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>((x = x * 1103515245u + 12345u) >> 16));
  for (size_t offset = 0; offset < 9; ++offset)
    for (size_t len = 0; offset + len <= data.size(); len += len < 40 ? 1 : 37)
      ASSERT_EQ(crc32_ieee(std::string_view(data).substr(offset, len)),
                bitwise(std::string_view(data).substr(offset, len)))
          << "offset " << offset << " length " << len;
}

TEST(Wal, RecoveryAfterCrashWithTornTailIsExact) {
  TempDir tmp;
  EngineOptions o = opts(tmp.path);
  {
    Engine e(o);
    ASSERT_TRUE(e.open(T0).ok());
    e.ingest(counter_batch(1, 0, 0, T0), T0);
    e.ingest(counter_batch(2, 10, 5, T0 + 1000), T0 + 1000);
    e.ingest(counter_batch(3, 25, 6, T0 + 2000), T0 + 2000);
    e.ingest(counter_batch(4, 99, 99, T0 + 3000), T0 + 3000);  // torn below: never acked
  }  // crash: no drain, no snapshot
  auto files = list_wal_files(o.state_dir);
  ASSERT_EQ(files.size(), 1u);
  std::string wal = wal_path(o.state_dir, files[0]);
  auto size = std::filesystem::file_size(wal);
  std::filesystem::resize_file(wal, size - 7);

  Engine r(o);
  ASSERT_TRUE(r.open(T0 + 4000).ok());
  EXPECT_EQ(r.stats().batches, 3u);
  auto out = r.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::App, "req", "count"), 31.0);
  EXPECT_TRUE(r.ingest(counter_batch(3, 25, 6, T0 + 2000), T0 + 5000).duplicate);
  EXPECT_FALSE(r.ingest(counter_batch(4, 35, 6, T0 + 3000), T0 + 13'000).duplicate);
  out = r.flush(T0 + 22'000);
  EXPECT_EQ(point(out, S0, Level::App, "req", "count", true), 41.0);
}

TEST(Wal, SnapshotPlusReplayEqualsUninterruptedRun) {
  TempDir tmp;
  EngineOptions o = opts(tmp.path);
  EngineOptions mem = o;
  mem.state_dir.clear();
  Engine ref(mem);
  ASSERT_TRUE(ref.open(T0).ok());
  std::vector<IntervalOutput> crashed_out;
  {
    Engine e(o);
    ASSERT_TRUE(e.open(T0).ok());
    uint64_t seq = 0;
    for (int64_t t = T0; t < T0 + 120'000; t += 5000) {
      double v = static_cast<double>((t - T0) / 100);
      std::string b = batch("agent", ++seq, {source(1, {counter("req", v, t), gauge("q", v, t)}),
                                             source(2, {counter("req", 2 * v, t)})});
      e.ingest(b, t);
      ref.ingest(b, t);
      if ((t - T0) % 30'000 == 0) {
        auto a = e.flush(t);
        auto b2 = ref.flush(t);
        EXPECT_EQ(as_map(a), as_map(b2));
      }
    }
    EXPECT_TRUE(std::filesystem::exists(o.state_dir + "/snapshot"));
    struct stat st{};
    ASSERT_EQ(::stat((o.state_dir + "/snapshot").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }  // crash
  Engine r(o);
  ASSERT_TRUE(r.open(T0 + 121'000).ok());
  EXPECT_EQ(r.stats().samples_in, ref.stats().samples_in);
  EXPECT_EQ(r.stats().series, ref.stats().series);
  // Intervals emitted after the snapshot are emitted again (same values); compare the rest.
  auto got = as_map(r.flush(T0 + 150'000));
  auto want = as_map(ref.flush(T0 + 150'000));
  for (const auto& [k, v] : want) {
    if (std::get<0>(k) < S0 + 90) continue;  // the reference emitted these before the crash
    ASSERT_TRUE(got.count(k)) << std::get<0>(k) << " " << std::get<3>(k) << " " << std::get<4>(k);
    EXPECT_DOUBLE_EQ(got[k], v) << std::get<0>(k) << " " << std::get<3>(k) << " " << std::get<4>(k);
  }
  // And a clean drain + reopen gives the same next interval again.
  auto d1 = r.drain(T0 + 150'000);
  auto d2 = ref.drain(T0 + 150'000);
  EXPECT_EQ(as_map(d1), as_map(d2));
}

TEST(Wal, DrainSnapshotThenReopenKeepsDedupAndBaselines) {
  TempDir tmp;
  EngineOptions o = opts(tmp.path);
  {
    Engine e(o);
    ASSERT_TRUE(e.open(T0).ok());
    e.ingest(counter_batch(1, 100, 100, T0), T0);
    e.drain(T0 + 1000);
  }
  EXPECT_EQ(list_wal_files(o.state_dir).size(), 1u);
  Engine r(o);
  ASSERT_TRUE(r.open(T0 + 2000).ok());
  EXPECT_TRUE(r.ingest(counter_batch(1, 100, 100, T0), T0 + 2000).duplicate);
  r.ingest(counter_batch(2, 103, 104, T0 + 15'000), T0 + 15'000);
  auto out = r.flush(T0 + 22'000);
  EXPECT_EQ(point(out, S0 + 10, Level::App, "req", "count"), 7.0);
}


// ---- framing: damaged records are skipped, replay resynchronises ------------------------

std::vector<std::string> write_records(const std::string& dir, int n) {
  WalWriter w;
  EXPECT_TRUE(w.open(dir, 1, false).ok());
  std::vector<std::string> batches;
  for (int i = 0; i < n; ++i) {
    batches.push_back("batch-" + std::to_string(i) + std::string(static_cast<size_t>(20 + i), 'x'));
    EXPECT_TRUE(w.append(T0 + i, batches.back()).ok());
  }
  return batches;
}

void flip_byte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x40);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

std::vector<std::string> replay_all(const std::string& path, bool newest, WalReplayReport& rep,
                                    std::vector<uint64_t>* offsets = nullptr) {
  std::vector<std::string> got;
  EXPECT_TRUE(replay_wal_file(path, newest, [&](const WalRecord& r) {
    got.emplace_back(r.batch);
    if (offsets) offsets->push_back(r.offset);
  }, rep).ok());
  return got;
}

TEST(WalFraming, FlippedBodyByteCostsOnlyThatRecord) {
  TempDir tmp;
  auto batches = write_records(tmp.path, 10);
  std::string path = wal_path(tmp.path, 1);
  WalReplayReport clean;
  std::vector<uint64_t> offsets;
  ASSERT_EQ(replay_all(path, false, clean, &offsets), batches);
  flip_byte(path, offsets[4] + 16 + 8 + 3);  // inside record 4's batch bytes
  WalReplayReport rep;
  auto got = replay_all(path, true, rep);
  auto want = batches;
  want.erase(want.begin() + 4);
  EXPECT_EQ(got, want);
  ASSERT_EQ(rep.damaged.size(), 1u);
  EXPECT_EQ(rep.damaged[0].offset, offsets[4]);
  EXPECT_EQ(rep.damaged[0].bytes, offsets[5] - offsets[4]);
  EXPECT_EQ(rep.torn_bytes, 0u);
  EXPECT_EQ(std::filesystem::file_size(path), offsets[9] + 16 + 8 + batches[9].size());
}

TEST(WalFraming, FlippedHeaderByteResynchronisesOnNextRecord) {
  TempDir tmp;
  auto batches = write_records(tmp.path, 10);
  std::string path = wal_path(tmp.path, 1);
  std::vector<uint64_t> offsets;
  WalReplayReport clean;
  replay_all(path, false, clean, &offsets);
  for (uint64_t in_header : {0u, 5u, 9u, 13u}) {  // magic, length, body crc, header crc
    TempDir t2;
    std::string copy = t2.path + "/wal.log";
    std::filesystem::copy_file(path, copy);
    flip_byte(copy, offsets[2] + in_header);
    WalReplayReport rep;
    auto want = batches;
    want.erase(want.begin() + 2);
    EXPECT_EQ(replay_all(copy, true, rep), want) << in_header;
    ASSERT_EQ(rep.damaged.size(), 1u);
    EXPECT_EQ(rep.damaged[0].offset, offsets[2]);
  }
}

TEST(WalFraming, DamagedFileHeaderCostsNoRecord) {
  TempDir tmp;
  auto batches = write_records(tmp.path, 4);
  std::string path = wal_path(tmp.path, 1);
  flip_byte(path, 2);
  WalReplayReport rep;
  EXPECT_EQ(replay_all(path, true, rep), batches);
  ASSERT_EQ(rep.damaged.size(), 1u);
  EXPECT_EQ(rep.damaged[0].offset, 0u);
  EXPECT_EQ(rep.damaged[0].bytes, 8u);
}

TEST(WalFraming, TwoDamagedRecordsAreCountedApart) {
  TempDir tmp;
  auto batches = write_records(tmp.path, 10);
  std::string path = wal_path(tmp.path, 1);
  std::vector<uint64_t> offsets;
  WalReplayReport clean;
  replay_all(path, false, clean, &offsets);
  flip_byte(path, offsets[1] + 20);
  flip_byte(path, offsets[7] + 2);
  WalReplayReport rep;
  EXPECT_EQ(replay_all(path, false, rep).size(), 8u);
  ASSERT_EQ(rep.damaged.size(), 2u);
  EXPECT_EQ(rep.damaged[0].offset, offsets[1]);
  EXPECT_EQ(rep.damaged[1].offset, offsets[7]);
}

TEST(WalFraming, ShortTailOfNewestFileIsTornAndTruncated) {
  TempDir tmp;
  auto batches = write_records(tmp.path, 5);
  std::string path = wal_path(tmp.path, 1);
  auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 7);
  WalReplayReport rep;
  auto got = replay_all(path, true, rep);
  EXPECT_EQ(got, std::vector<std::string>(batches.begin(), batches.begin() + 4));
  EXPECT_TRUE(rep.damaged.empty());
  EXPECT_GT(rep.torn_bytes, 0u);
  EXPECT_EQ(std::filesystem::file_size(path), size - 7 - rep.torn_bytes);
}

TEST(WalFraming, DamagedLastRecordOfOlderFileIsDamageNotTorn) {
  TempDir tmp;
  write_records(tmp.path, 5);
  std::string path = wal_path(tmp.path, 1);
  auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 7);
  WalReplayReport rep;
  EXPECT_EQ(replay_all(path, false, rep).size(), 4u);
  ASSERT_EQ(rep.damaged.size(), 1u);
  EXPECT_EQ(rep.torn_bytes, 0u);
  EXPECT_EQ(std::filesystem::file_size(path), size - 7);  // kept, not truncated
}

TEST(WalFraming, Format1FilesFromBeforeTheUpgradeStillReplay) {
  TempDir tmp;
  std::string path = tmp.path + "/wal-0000000000000001.log";
  std::string bytes;
  auto le32 = [&](uint32_t v) { for (int i = 0; i < 4; ++i) bytes.push_back(char((v >> (8 * i)) & 0xFF)); };
  for (int i = 0; i < 3; ++i) {
    std::string body(8, '\0');
    body[0] = static_cast<char>(i);
    body += "old-" + std::to_string(i);
    le32(static_cast<uint32_t>(body.size()));
    le32(crc32_ieee(body));
    bytes += body;
  }
  std::ofstream(path, std::ios::binary) << bytes;
  WalReplayReport rep;
  EXPECT_EQ(replay_all(path, true, rep), (std::vector<std::string>{"old-0", "old-1", "old-2"}));
  EXPECT_TRUE(rep.damaged.empty());
}

TEST(WalFraming, EngineReportsDamageAndReplaysEveryOtherBatch) {
  TempDir tmp;
  EngineOptions o = opts(tmp.path);
  {
    Engine e(o);
    ASSERT_TRUE(e.open(T0).ok());
    for (uint64_t seq = 1; seq <= 6; ++seq)
      e.ingest(counter_batch(seq, 10.0 * static_cast<double>(seq - 1), 0, T0), T0);
  }  // crash
  std::string wal = wal_path(o.state_dir, list_wal_files(o.state_dir)[0]);
  std::vector<uint64_t> offsets;
  WalReplayReport clean;
  replay_all(wal, false, clean, &offsets);
  flip_byte(wal, offsets[3] + 40);  // seq 4
  {
    Engine r(o);
    ASSERT_TRUE(r.open(T0 + 1000).ok());
    EXPECT_EQ(r.stats().batches, 5u);
    EXPECT_EQ(r.stats().wal_damaged_records, 1u);
    EXPECT_NE(r.stats().wal_last_damage.find("offset " + std::to_string(offsets[3])),
              std::string::npos) << r.stats().wal_last_damage;
    // Cumulative counters: the damaged seq 4 costs nothing once seq 5 arrives (50 in total).
    EXPECT_EQ(point(r.flush(T0 + 12'000), S0, Level::App, "req", "count"), 50.0);
    EXPECT_TRUE(std::filesystem::exists(o.state_dir + "/quarantine/" +
                                        std::filesystem::path(wal).filename().string()));
  }  // stopped (a second engine on the same state_dir is refused while this one runs)
  Engine again(o);  // the damage was retired by a snapshot: not reported twice
  ASSERT_TRUE(again.open(T0 + 2000).ok());
  EXPECT_EQ(again.stats().wal_damaged_records, 0u);
}

TEST(StateDirLock, ASecondEngineOnTheSameStateDirIsRefusedUntilTheFirstStops) {
  TempDir tmp;
  EngineOptions o = opts(tmp.path);
  {
    Engine first(o);
    ASSERT_TRUE(first.open(T0).ok());
    Engine second(o);
    Status refused = second.open(T0);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message.find("in use by another statherd-server"),
              std::string::npos) << refused.error().message;
    EXPECT_NE(refused.error().hint.find("its own --state-dir"), std::string::npos);
  }
  Engine later(o);
  EXPECT_TRUE(later.open(T0 + 1000).ok());
}

TEST(WalFraming, RecordThatCrashedTheLastReplayIsQuarantined) {
  TempDir tmp;
  EngineOptions o = opts(tmp.path);
  {
    Engine e(o);
    ASSERT_TRUE(e.open(T0).ok());
    for (uint64_t seq = 1; seq <= 3; ++seq)
      e.ingest(counter_batch(seq, 10.0 * static_cast<double>(seq), 0, T0), T0);
  }
  std::string wal = wal_path(o.state_dir, list_wal_files(o.state_dir)[0]);
  std::vector<uint64_t> offsets;
  WalReplayReport clean;
  replay_all(wal, false, clean, &offsets);
  {  // as if a replay had died while applying seq 2
    std::ofstream m(o.state_dir + "/replaying");
    m << std::filesystem::path(wal).filename().string() << " " << offsets[1] << "\n";
  }
  Engine r(o);
  ASSERT_TRUE(r.open(T0 + 1000).ok());
  EXPECT_EQ(r.stats().batches, 2u);
  EXPECT_EQ(r.stats().wal_quarantined_records, 1u);
  EXPECT_FALSE(std::filesystem::exists(o.state_dir + "/replaying"));
  WalReplayReport q;
  std::vector<std::string> kept = replay_all(o.state_dir + "/quarantine/records.log", false, q);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0], counter_batch(2, 20, 0, T0));
}

TEST(WalFraming, UndecodableRecordIsQuarantinedAndReplayGoesOn) {
  TempDir tmp;
  EngineOptions o = opts(tmp.path);
  ASSERT_TRUE(std::filesystem::create_directories(o.state_dir));
  WalWriter w;
  ASSERT_TRUE(w.open(o.state_dir, 0, false).ok());
  ASSERT_TRUE(w.append(T0, counter_batch(1, 5, 0, T0)).ok());
  ASSERT_TRUE(w.append(T0, "SHB\x01 not a batch").ok());
  ASSERT_TRUE(w.append(T0, counter_batch(2, 12, 0, T0)).ok());
  w.close();
  Engine r(o);
  ASSERT_TRUE(r.open(T0 + 1000).ok());
  EXPECT_EQ(r.stats().batches, 2u);
  EXPECT_EQ(r.stats().wal_quarantined_records, 1u);
}

}  // namespace
}  // namespace statherd::server
