// Ingest never waits for the rollup: the real HttpServer, with its rollup held on the pipeline
// thread (before_flush blocks), still answers ingest; the batches are applied once it goes on.
// And the pipelined WAL (WalCommitter + Engine::snapshot_at) recovers exactly what was
// acknowledged, across a rotation and a crash.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "common/wire.h"
#include "server/engine.h"
#include "server/http_server.h"
#include "server/wal_committer.h"
#include "http_test_client.h"
#include "running_server.h"
#include "temp_dir.h"

namespace statherd::server {
namespace {

using testing::TempDir;

constexpr int64_t kNowMs = 1'700'000'005'000;

// POST one batch on a fresh connection; the HTTP status, or 0 when no answer came in 20 s.
int post_ingest(uint16_t port, const std::string& body) {
  return testing::request(port, "POST", "/api/v1/ingest", body,
                          "Authorization: Bearer s3cret\r\n").status;
}

Batch counter_batch(uint64_t seq, double value) {
  Batch batch;
  batch.agent_id = "agent-1";
  batch.seq = seq;
  batch.sent_ms = kNowMs;
  SourceSamples ss;
  ss.id = SourceIdentity{"h1", "web", 42, 1000, "/tmp/web-42-42.mmstats"};
  ss.fresh = true;
  Sample s;
  s.name = "requests";
  s.kind = Kind::Counter;
  s.value = value;
  s.timestamp_ms = kNowMs;
  ss.samples.push_back(s);
  batch.sources.push_back(ss);
  return batch;
}

class PipelinedServer {
 public:
  PipelinedServer(const std::string& state_dir, std::function<void(int64_t)> before_flush) {
    EngineOptions eo;
    eo.interval = std::chrono::milliseconds(100);
    eo.grace = std::chrono::milliseconds(0);
    eo.state_dir = state_dir;
    eo.fsync = false;
    engine = std::make_unique<Engine>(eo);
    EXPECT_TRUE(engine->open(kNowMs).ok());
    routes = std::make_unique<ApiRoutes>(token, *engine, store, [] { return kNowMs; });
    HttpServerOptions ho;
    ho.port = 0;
    PipelineOptions po;
    po.before_flush = std::move(before_flush);
    po.now_ms = [] { return kNowMs; };
    server = std::make_unique<testing::RunningServer>(ho, po, *engine, store,
                                                      std::vector<Sink*>{}, *routes);
  }
  void stop() {
    if (server) server->stop();
  }
  ~PipelinedServer() { stop(); }

  IngestToken token{"s3cret"};
  MemoryStore store{{}};
  std::unique_ptr<Engine> engine;
  std::unique_ptr<ApiRoutes> routes;
  std::unique_ptr<testing::RunningServer> server;
};

// On main the rollup ran on the io thread: this ingest got no answer until the rollup ended.
TEST(IngestPipeline, IngestIsAnsweredWhileTheRollupIsHeld) {
  for (bool wal : {false, true}) {
    SCOPED_TRACE(wal ? "with a WAL" : "without a WAL");
    TempDir dir;
    std::promise<void> entered, release;
    std::shared_future<void> released = release.get_future().share();
    std::atomic<bool> first{true};
    PipelinedServer s(wal ? dir.path : "", [&](int64_t) {
      if (first.exchange(false)) entered.set_value();
      released.wait();
    });
    entered.get_future().wait();  // the pipeline thread is inside a rollup now, and stays
    EXPECT_EQ(post_ingest(s.server->port(), encode_batch(counter_batch(1, 5))), 200);
    EXPECT_EQ(post_ingest(s.server->port(), encode_batch(counter_batch(2, 12))), 200);
    // Answered, not applied yet: the pipeline is still held.
    EXPECT_EQ(s.engine->stats().batches, 0u);
    EXPECT_EQ(s.engine->stats().samples_in, 0u);
    release.set_value();
    s.stop();  // drains: every acknowledged batch applied, in order
    EXPECT_EQ(s.engine->stats().batches, 2u);
    EXPECT_EQ(s.engine->stats().samples_in, 2u);
  }
}

TEST(IngestPipeline, ResendOfALoggedBatchIsADuplicate) {
  PipelinedServer s("", nullptr);
  const std::string body = encode_batch(counter_batch(1, 5));
  EXPECT_EQ(post_ingest(s.server->port(), body), 200);
  EXPECT_EQ(post_ingest(s.server->port(), body), 200);
  s.stop();
  EXPECT_EQ(s.engine->stats().batches, 1u);
  EXPECT_EQ(s.engine->stats().duplicates, 1u);
}

// The server's WAL path by hand: admit, log through the committer (callbacks queue the
// applies in order), rotate + snapshot_at midway, more batches, then a crash (no drain, no
// snapshot). A new engine on the same dir recovers every logged batch exactly once.
TEST(IngestPipeline, CommitterRotationAndSnapshotRecoverEveryLoggedBatch) {
  TempDir dir;
  EngineOptions eo;
  eo.state_dir = dir.path;
  eo.fsync = false;
  uint64_t first_file = 0, next_file = 0;
  {
    Engine engine(eo);
    ASSERT_TRUE(engine.open(kNowMs).ok());
    first_file = engine.take_wal();
    WalCommitter committer(dir.path, first_file, false);
    ASSERT_TRUE(committer.start().ok());
    std::mutex mu;
    std::vector<std::function<void()>> pipeline;  // a FIFO, as the server's strand
    std::atomic<int> answered{0};
    auto submit = [&](uint64_t seq, double value) {
      Admission a = engine.admit(encode_batch(counter_batch(seq, value)), kNowMs);
      ASSERT_TRUE(a.batch);
      committer.submit(std::move(a.record), [&, batch = a.batch](const Status& ok) {
        engine.logged(*batch, static_cast<bool>(ok));
        std::lock_guard<std::mutex> g(mu);
        pipeline.push_back([&engine, batch] { engine.apply_admitted(*batch, kNowMs); });
        ++answered;
      });
    };
    for (uint64_t seq = 1; seq <= 5; ++seq) submit(seq, static_cast<double>(seq * 3));
    std::promise<uint64_t> rotated;
    committer.rotate([&](const Result<uint64_t>& next) {
      ASSERT_TRUE(static_cast<bool>(next));
      std::lock_guard<std::mutex> g(mu);
      EXPECT_EQ(answered.load(), 5);  // after every record submitted before it
      pipeline.push_back([&engine, &rotated, n = *next] {
        EXPECT_TRUE(engine.snapshot_at(n, kNowMs).ok());
        rotated.set_value(n);
      });
    });
    for (uint64_t seq = 6; seq <= 9; ++seq) submit(seq, static_cast<double>(seq * 3));
    committer.stop();
    for (auto& task : pipeline) task();
    next_file = rotated.get_future().get();
    EXPECT_EQ(next_file, first_file + 1);
    EXPECT_EQ(engine.stats().batches, 9u);
    // A resend of a logged batch is a duplicate; of a new seq, admitted.
    EXPECT_TRUE(engine.admit(encode_batch(counter_batch(9, 27)), kNowMs).outcome.duplicate);
    EXPECT_FALSE(engine.admit(encode_batch(counter_batch(10, 30)), kNowMs).outcome.duplicate);
  }  // crash: no drain
  EXPECT_EQ(list_wal_files(dir.path), std::vector<uint64_t>{next_file});
  Engine again(eo);
  ASSERT_TRUE(again.open(kNowMs).ok());
  EXPECT_EQ(again.stats().batches, 9u);  // 5 from the snapshot, 4 replayed from the new file
  EXPECT_EQ(again.stats().samples_in, 9u);
}

TEST(WalCommitter, StartFailsWithoutItsDirectory) {
  TempDir dir;
  WalCommitter committer(dir.path + "/missing", 0, false);
  EXPECT_FALSE(committer.start().ok());  // no directory: start says so, nothing runs
}

// The next file cannot be written (a full disk: /dev/full): the rotation reports the error and
// the records go on into the current file.
TEST(WalCommitter, AFailedRotationKeepsLoggingToTheCurrentFile) {
  TempDir dir;
  ASSERT_EQ(::symlink("/dev/full", wal_path(dir.path, 8).c_str()), 0);
  WalCommitter committer(dir.path, 7, false);
  ASSERT_TRUE(committer.start().ok());
  std::atomic<int> ok{0};
  std::promise<bool> rotated;
  committer.submit(frame_wal_record(1, "one"), [&](const Status& s) { ok += s.ok(); });
  committer.rotate([&](const Result<uint64_t>& next) { rotated.set_value(next.ok()); });
  committer.submit(frame_wal_record(2, "two"), [&](const Status& s) { ok += s.ok(); });
  committer.stop();
  EXPECT_FALSE(rotated.get_future().get());
  EXPECT_EQ(ok.load(), 2);
  EXPECT_EQ(committer.number(), 7u);
  int records = 0;
  WalReplayReport report;
  ASSERT_TRUE(replay_wal_file(wal_path(dir.path, 7), true, [&](const WalRecord&) { ++records; },
                              report)
                  .ok());
  EXPECT_EQ(records, 2);
}

TEST(WalCommitter, RecordsAreLoggedInOrder) {
  TempDir dir;
  WalCommitter committer(dir.path, 3, false);
  ASSERT_TRUE(committer.start().ok());
  std::vector<int> order;
  std::mutex mu;
  for (int i = 0; i < 200; ++i) {
    committer.submit(frame_wal_record(i, "batch-" + std::to_string(i)), [&, i](const Status& s) {
      EXPECT_TRUE(s.ok());
      std::lock_guard<std::mutex> g(mu);
      order.push_back(i);
    });
  }
  committer.stop();
  ASSERT_EQ(order.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(order[i], i);
  EXPECT_EQ(committer.counters().records, 200u);
  EXPECT_LE(committer.counters().groups, 200u);
  std::vector<std::string> seen;
  WalReplayReport report;
  ASSERT_TRUE(replay_wal_file(wal_path(dir.path, 3), true,
                              [&](const WalRecord& r) { seen.emplace_back(r.batch); }, report)
                  .ok());
  ASSERT_EQ(seen.size(), 200u);
  EXPECT_EQ(seen.front(), "batch-0");
  EXPECT_EQ(seen.back(), "batch-199");
}

}  // namespace
}  // namespace statherd::server
