// Remote write across restarts and refusals (issue #15): a request Prometheus refuses for some
// of its samples is split and the rest resent; a restarted sink skips what the receiver holds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "remote_write_test_util.h"
#include "server/sinks/remote_write.h"
#include "server/sinks/remote_write_outbox.h"

namespace statherd::server {
namespace {

using namespace testing;

// Issue #15 item 3: Prometheus refuses a whole request for one out-of-order sample; the sink
// splits it and resends, so only that sample is lost, counted under its reason.
TEST(RemoteWriteSink, SplitsARequestRefusedForOneSampleAndResendsTheRest) {
  ScriptedReceiver receiver({400, 400, 204}, false,
                            {"out of order sample\n", "out of order sample\n"});
  RemoteWriteSink sink(fast_options(receiver.port()));
  sink.enqueue({series({{"__name__", "old"}}, {{1, 1000}}),
                series({{"__name__", "new"}}, {{2, 1000}})});
  sink.stop();
  receiver.join();
  const auto c = sink.counters();
  EXPECT_EQ(c.requests, 3u);
  EXPECT_EQ(c.batch_splits, 1u);
  EXPECT_EQ(c.samples_sent, 1u);
  EXPECT_EQ(c.samples_rejected, 1u);
  EXPECT_EQ(c.rejected_by_reason[static_cast<int>(RwReject::OutOfOrder)], 1u);
  EXPECT_EQ(c.samples_in_flight, 0u);
  EXPECT_EQ(c.samples_queued, c.samples_sent + c.samples_rejected);
  ASSERT_EQ(receiver.requests.size(), 3u);
  EXPECT_EQ(sent_series(receiver.requests[0]).size(), 2u);
  ASSERT_EQ(sent_series(receiver.requests[2]).size(), 1u);
  EXPECT_EQ(sent_series(receiver.requests[2])[0].labels[0].value, "new");
}

TEST(RemoteWriteSink, RejectionReasonsFromTheReceiversAnswer) {
  EXPECT_EQ(classify_remote_write_rejection("out of order sample"), RwReject::OutOfOrder);
  EXPECT_EQ(classify_remote_write_rejection("duplicate sample for timestamp"), RwReject::Duplicate);
  EXPECT_EQ(classify_remote_write_rejection("out of bounds"), RwReject::OutOfBounds);
  EXPECT_EQ(classify_remote_write_rejection("404 page not found"), RwReject::Other);
  std::vector<RwSeries> one = {series({{"__name__", "a"}}, {{1, 1000}, {2, 2000}, {3, 3000}})};
  std::vector<RwSeries> rest;
  ASSERT_TRUE(split_rw_batch(one, rest));
  EXPECT_EQ(one[0].samples, (std::vector<RwSample>{{1, 1000}}));
  EXPECT_EQ(rest[0].samples, (std::vector<RwSample>{{2, 2000}, {3, 3000}}));
  ASSERT_TRUE(split_rw_batch(rest, one));
  EXPECT_FALSE(split_rw_batch(one, rest)) << "one sample cannot be split";
}

// Issue #15 item 2: a restarted sink (same state dir) skips what the receiver already holds
// (the engine re-emits it after a crash) and sends what is newer.
TEST(RemoteWriteSink, RestartedSinkSkipsSamplesAtOrBeforeTheHighWaterMark) {
  const std::string dir = ::testing::TempDir() + "rw-hwm-sink-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  ScriptedReceiver receiver({204, 204});
  RemoteWriteSinkOptions o = fast_options(receiver.port());
  o.hwm_path = dir + "/remote_write.hwm";
  {
    RemoteWriteSink first(o);
    first.enqueue({series({{"__name__", "a"}}, {{1, 1000}, {2, 2000}})});
    first.stop();
  }
  RemoteWriteSink second(o);
  second.enqueue({series({{"__name__", "a"}}, {{5, 2000}, {6, 3000}}),
                  series({{"__name__", "b"}}, {{7, 2000}})});
  second.stop();
  receiver.join();
  std::filesystem::remove_all(dir);
  const auto c = second.counters();
  EXPECT_EQ(c.samples_skipped, 2u);
  EXPECT_EQ(c.samples_sent, 1u);
  EXPECT_EQ(c.samples_queued, c.samples_sent + c.samples_skipped);
  ASSERT_EQ(receiver.requests.size(), 2u);
  const auto got = sent_series(receiver.requests[1]);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].samples, (std::vector<RwSample>{{6, 3000}}));
}

struct StateDir {
  std::string path = ::testing::TempDir() + "rw-state-" + std::to_string(::getpid()) + "-" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name();
  StateDir() { std::filesystem::create_directories(path); }
  ~StateDir() { std::filesystem::remove_all(path); }
};

std::string body_of(const std::string& request) { return request.substr(request.find("\n\n") + 2); }

// The request in flight when the previous run was SIGKILLed (Prometheus may have stored it).
std::string leave_outbox(const std::string& dir, const RemoteWriteSinkOptions& o,
                         const std::vector<RwSeries>& batch) {
  const std::string body = snappy_block_compress(encode_write_request(batch));
  RwOutbox(dir + "/remote_write.outbox").put({o.url.to_string(), rw_marks_of(batch), body});
  return body;
}

// Issue #15 review, item 1: the outbox is resent byte for byte before anything else (an identical
// sample is accepted silently by Prometheus), and the regenerated samples at or before its marks
// (their values differ: late data folded in) are never sent.
TEST(RemoteWriteSink, RestartResendsTheOutboxUnchangedAndSkipsWhatItCovers) {
  StateDir dir;
  ScriptedReceiver receiver({204, 204});
  RemoteWriteSinkOptions o = fast_options(receiver.port());
  o.hwm_path = dir.path + "/remote_write.hwm";
  const std::string body = leave_outbox(dir.path, o, {series({{"__name__", "a"}}, {{5, 2000}}),
                                                      series({{"__name__", "b"}}, {{7, 2000}})});
  RemoteWriteSink sink(o);
  sink.enqueue({series({{"__name__", "a"}}, {{6, 2000}, {8, 3000}}),
                series({{"__name__", "b"}}, {{9, 2000}})});
  sink.stop();
  receiver.join();
  ASSERT_EQ(receiver.requests.size(), 2u);
  EXPECT_EQ(body_of(receiver.requests[0]), body);
  const auto got = sent_series(receiver.requests[1]);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].samples, (std::vector<RwSample>{{8, 3000}}));
  const auto c = sink.counters();
  EXPECT_EQ(c.samples_skipped, 2u);
  EXPECT_EQ(c.samples_sent, 1u);
  EXPECT_EQ(c.samples_queued, c.samples_sent + c.samples_skipped);
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/remote_write.outbox"));
  std::string floor_line;
  std::getline(std::ifstream(o.hwm_path), floor_line);
  EXPECT_EQ(floor_line, "3000 " + o.url.to_string());
}

// A resent outbox with two samples of one series is refused for the older one when Prometheus
// had stored it: it was delivered, and its marks stand.
TEST(RemoteWriteSink, OutboxRefusedAsOutOfOrderWasStoredBeforeTheCrash) {
  StateDir dir;
  ScriptedReceiver receiver({400, 204}, false, {"out of order sample\n"});
  RemoteWriteSinkOptions o = fast_options(receiver.port());
  o.hwm_path = dir.path + "/remote_write.hwm";
  leave_outbox(dir.path, o, {series({{"__name__", "a"}}, {{5, 2000}, {6, 3000}})});
  RemoteWriteSink sink(o);
  sink.enqueue({series({{"__name__", "a"}}, {{7, 3000}, {8, 4000}})});
  sink.stop();
  receiver.join();
  ASSERT_EQ(receiver.requests.size(), 2u);
  EXPECT_EQ(sent_series(receiver.requests[1])[0].samples, (std::vector<RwSample>{{8, 4000}}));
  const auto c = sink.counters();
  EXPECT_EQ(c.samples_rejected, 0u);
  EXPECT_EQ(c.samples_skipped, 1u);
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/remote_write.outbox"));
}

std::vector<RwSeries> five_intervals() {
  std::vector<RwSeries> out;
  for (const char* name : {"a", "b"}) {
    out.push_back(series({{"__name__", name}}, {}));
    for (int64_t t = 1000; t <= 5000; t += 1000) out.back().samples.push_back({double(t), t});
  }
  return out;
}

// Issue #15 review, item 2: without its marks, a sink whose receiver holds samples from before
// the sink's start drops them oldest first in growing steps: 3 requests here, not one per sample.
TEST(RemoteWriteSink, CutsSamplesFromBeforeItsStartThatTheReceiverHolds) {
  ScriptedReceiver receiver({400, 400, 204}, false,
                            {"out of order sample\n", "duplicate sample for timestamp\n"});
  RemoteWriteSinkOptions o = fast_options(receiver.port());
  o.clock_ms = [] { return int64_t{10'000}; };  // started after all five intervals
  RemoteWriteSink sink(o);
  sink.enqueue(five_intervals());
  sink.stop();
  receiver.join();
  ASSERT_EQ(receiver.requests.size(), 3u);
  const auto last = sent_series(receiver.requests[2]);
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(last[0].samples.front().timestamp_ms, 3000) << "cut at 1000, then at 2000";
  const auto c = sink.counters();
  EXPECT_EQ(c.stale_cuts, 2u);
  EXPECT_EQ(c.batch_splits, 0u);
  EXPECT_EQ(c.samples_sent, 6u);
  EXPECT_EQ(c.samples_rejected, 4u);
  EXPECT_EQ(c.rejected_by_reason[static_cast<int>(RwReject::OutOfOrder)], 2u);
  EXPECT_EQ(c.rejected_by_reason[static_cast<int>(RwReject::Duplicate)], 2u);
  EXPECT_EQ(c.samples_in_flight, 0u);
  EXPECT_EQ(c.samples_queued, c.samples_sent + c.samples_rejected);
}

// A new URL (here another name of the same receiver) keeps the old one's floor as a hint: the
// first cut is there.
TEST(RemoteWriteSink, NewUrlCutsAtTheFloorOfThePreviousUrlFirst) {
  StateDir dir;
  ScriptedReceiver receiver({400, 204}, false, {"out of order sample\n"});
  RemoteWriteSinkOptions o = fast_options(receiver.port());
  o.hwm_path = dir.path + "/remote_write.hwm";
  o.clock_ms = [] { return int64_t{10'000}; };
  std::ofstream(o.hwm_path) << "4000 http://localhost:" << receiver.port() << "/api/v1/write\n";
  RemoteWriteSink sink(o);
  sink.enqueue(five_intervals());
  sink.stop();
  receiver.join();
  ASSERT_EQ(receiver.requests.size(), 2u);
  const auto last = sent_series(receiver.requests[1]);
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(last[0].samples, (std::vector<RwSample>{{5000, 5000}}));
  EXPECT_EQ(sink.counters().samples_rejected, 8u);
}

// The same window without a crash: the answer to a request the receiver stored is lost (timeout
// after the request was sent), and the retry is refused for the series' older sample. It was
// delivered: counted as sent, its marks stand, nothing is split or rejected.
TEST(RemoteWriteSink, RetryRefusedAfterALostAnswerWasStoredByTheFirstAttempt) {
  ScriptedReceiver receiver({204, 400, 204}, true, {"", "out of order sample\n"});
  RemoteWriteSinkOptions o = fast_options(receiver.port());
  o.timeout = std::chrono::milliseconds(300);
  RemoteWriteSink sink(o);
  sink.enqueue({series({{"__name__", "a"}}, {{1, 1000}, {2, 2000}})});
  receiver.first_request_read.get_future().wait();
  while (sink.counters().request_failures == 0) std::this_thread::yield();  // timed out
  receiver.answer_first.set_value();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (sink.counters().samples_in_flight != 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::yield();
  ASSERT_EQ(sink.counters().samples_in_flight, 0u) << "the first batch is settled";
  sink.enqueue({series({{"__name__", "a"}}, {{3, 2000}, {4, 3000}})});
  sink.stop();
  receiver.join();
  const auto c = sink.counters();
  EXPECT_EQ(c.samples_sent, 3u);
  EXPECT_EQ(c.samples_rejected, 0u);
  EXPECT_EQ(c.samples_skipped, 1u) << "the regenerated sample at 2000 is at the mark";
  EXPECT_EQ(c.batch_splits, 0u);
  ASSERT_EQ(receiver.requests.size(), 3u);
  EXPECT_EQ(sent_series(receiver.requests[2])[0].samples, (std::vector<RwSample>{{4, 3000}}));
}

}  // namespace
}  // namespace statherd::server
