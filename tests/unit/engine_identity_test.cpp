// The server's own rules for a source the agent could not mark correctly: the agent lost the
// batch with a fresh first sighting (held in memory while its spool disk was full, then the
// agent was stopped), or it read a dead mmstats v1 writer's file without the process start
// time. Found by the 10-minute chaos test, which fills the spool for 90 s while killing agents.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine_test_util.h"
#include "server/engine.h"

namespace statherd::server {
namespace {

using namespace testing;
constexpr int64_t T0 = 1'700'000'000'000;  // an interval boundary
constexpr int64_t S0 = T0 / 1000;

EngineOptions opts() {
  EngineOptions o;
  o.fsync = false;
  return o;
}

std::string batch_at(uint64_t seq, int64_t sent_ms, std::vector<SourceSamples> src) {
  Batch b;
  b.agent_id = "a";
  b.seq = seq;
  b.sent_ms = sent_ms;
  b.sources = std::move(src);
  return encode_batch(b);
}

SourceSamples started_at(int64_t pid, int64_t start_ms, double value, int64_t read_ms) {
  SourceSamples ss = source(pid, {counter("req", value, read_ms)});
  ss.id.start_time_ms = start_ms;
  return ss;
}

TEST(EngineIdentity, ProcessStartedAfterTheAgentsLastReadCountsWholeWithoutFreshFlag) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  // Batch 1 read at T0+1000 with an old process; the process of pid 7 starts at T0+1500, the
  // batch of its fresh first sighting is lost, and the next batch carries it not fresh.
  e.ingest(batch_at(1024, T0 + 1000, {started_at(1, T0 - 60'000, 50, T0 + 1000)}), T0 + 1000);
  e.ingest(batch_at(2048, T0 + 4000, {started_at(1, T0 - 60'000, 60, T0 + 4000), started_at(7, T0 + 1500, 40, T0 + 4000)}),
           T0 + 4000);
  auto out = e.flush(T0 + 12'000);
  // pid 1 baselined at 50, +10; pid 7 started after the agent's previous read: all 40 count.
  EXPECT_EQ(point(out, S0, Level::App, "req", "count"), 50.0);
}

TEST(EngineIdentity, ProcessStartedBeforeTheLastReadOrWithoutAProcessIsBaselined) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch_at(1024, T0 + 1000, {started_at(1, T0 - 60'000, 50, T0 + 1000)}), T0 + 1000);
  SourceSamples dir = started_at(-1, T0 + 3000, 500, T0 + 4000);  // a prometheus_client directory view
  e.ingest(batch_at(2048, T0 + 4000, {started_at(1, T0 - 60'000, 60, T0 + 4000), started_at(8, T0 + 900, 30, T0 + 4000),
                                      dir}),
           T0 + 4000);
  auto out = e.flush(T0 + 12'000);
  // pid 8 started before the read of batch 1 (the agent saw it then or chose not to count
  // it); the directory's start time is the agent's first read, not a process start: both
  // are baselines.
  EXPECT_EQ(point(out, S0, Level::App, "req", "count"), 10.0);
}

TEST(EngineIdentity, FirstBatchOfAnAgentGivesNoReadTimeToCompareWith) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch_at(1024, T0 + 1000, {started_at(7, T0 + 500, 40, T0 + 1000)}), T0 + 1000);
  e.ingest(batch_at(2048, T0 + 2000, {started_at(7, T0 + 500, 45, T0 + 2000)}), T0 + 2000);
  auto out = e.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::App, "req", "count"), 5.0);
}

TEST(EngineIdentity, TheLastReadTimeSurvivesARestart) {
  const std::string dir = ::testing::TempDir() + "/statherd-identity-restart";
  std::filesystem::remove_all(dir);
  EngineOptions o = opts();
  o.state_dir = dir;
  {
    Engine e(o);
    ASSERT_TRUE(e.open(T0).ok());
    e.ingest(batch_at(1024, T0 + 1000, {started_at(1, T0 - 60'000, 50, T0 + 1000)}), T0 + 1000);
    e.drain(T0 + 1500);  // snapshot
  }
  {
    Engine e(o);
    ASSERT_TRUE(e.open(T0 + 2000).ok());
    e.ingest(batch_at(2048, T0 + 4000, {started_at(1, T0 - 60'000, 60, T0 + 4000), started_at(7, T0 + 1500, 40, T0 + 4000)}),
             T0 + 4000);
    auto out = e.flush(T0 + 12'000);
    EXPECT_EQ(point(out, S0, Level::App, "req", "count"), 50.0);
  }
  std::filesystem::remove_all(dir);
}

SourceSamples born_at(int64_t pid, int64_t birth_ms, double value, int64_t read_ms) {
  SourceSamples ss = started_at(pid, birth_ms, value, read_ms);
  ss.start_is_file_birth = true;
  return ss;
}

TEST(EngineIdentity, DeadV1FileIdentifiedByItsBirthContinuesTheKnownProcess) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch_at(1024, T0 + 1000, {started_at(3, T0 - 60'000, 100, T0 + 1000)}), T0 + 1000);
  e.ingest(batch_at(2048, T0 + 2000, {started_at(3, T0 - 60'000, 110, T0 + 2000)}), T0 + 2000);
  // The file was created just after its process started (a process creates its file).
  e.ingest(batch_at(3072, T0 + 5000, {born_at(3, T0 - 59'990, 125, T0 + 5000)}), T0 + 5000);
  auto out = e.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::App, "req", "count"), 25.0) << "110 -> 125 is 15 more";
}

TEST(EngineIdentity, UnknownFileBornAfterTheLastReadCountsWholeBornBeforeIsBaselined) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch_at(1024, T0 + 1000, {started_at(1, T0 - 60'000, 50, T0 + 1000)}), T0 + 1000);
  // pid 4's whole life fell between two applied reads; pid 5's file is older than the read.
  e.ingest(batch_at(2048, T0 + 4000, {started_at(1, T0 - 60'000, 60, T0 + 4000),
                                      born_at(4, T0 + 1500, 40, T0 + 4000),
                                      born_at(5, T0 + 500, 30, T0 + 4000)}),
           T0 + 4000);
  auto out = e.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::App, "req", "count"), 50.0) << "10 + 40; pid 5 a baseline";
}

TEST(EngineIdentity, DeadV1FileWithoutStartTimeContinuesTheKnownProcess) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  e.ingest(batch_at(1024, T0 + 1000, {started_at(3, T0 - 60'000, 100, T0 + 1000)}), T0 + 1000);
  e.ingest(batch_at(2048, T0 + 2000, {started_at(3, T0 - 60'000, 110, T0 + 2000)}), T0 + 2000);
  // A restarted agent reads the file after the process died: /proc has no start time.
  SourceSamples dead = started_at(3, 0, 125, T0 + 5000);
  e.ingest(batch_at(3072, T0 + 5000, {dead}), T0 + 5000);
  auto out = e.flush(T0 + 12'000);
  EXPECT_EQ(point(out, S0, Level::App, "req", "count"), 25.0) << "110 -> 125 is 15 more";
}

}  // namespace
}  // namespace statherd::server
