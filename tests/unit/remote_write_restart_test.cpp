// Remote write across restarts and refusals (issue #15): a request Prometheus refuses for some
// of its samples is split and the rest resent; a restarted sink skips what the receiver holds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "remote_write_test_util.h"
#include "server/sinks/remote_write.h"

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

}  // namespace
}  // namespace statherd::server
