// RemoteWriteSink: Prometheus remote-write 1.0 (`--remote-write URL`, YAML `remote_write:`).
//
// Names, labels and values are those of GET /metrics (shared naming, prometheus_names.h): each
// interval's records become one sample per series, stamped with the interval start (ms), by
// RwSeriesBuilder (remote_write_series.h). Only the series the interval emitted are sent: one
// the engine did not emit has no sample for that interval (/metrics keeps showing its last
// value until it expires; resending that value as a new sample would invent data). A
// re-emitted interval (late data) is not sent on its own: Prometheus refuses samples older than
// the newest one of a series; the engine's running totals carry the late counts into the next
// interval instead.
//
// emit() only converts and queues (bounded by queue_max_samples, drop oldest, counted). A sender
// thread takes batches of at most batch_max_samples (samples of one series stay in time order),
// encodes a WriteRequest, snappy-compresses it and POSTs it with the spec's headers and a
// deadline. 5xx, 429 and connection errors: the same batch is retried with exponential backoff
// (new samples keep queueing, the oldest dropping beyond the bound); any other non-2xx: the batch
// is dropped and counted (retrying a 400 cannot succeed).
//
// Restarts (issue #15): the `_count_total`, `_count` and `_sum` values are the engine's running
// totals, so they continue where they were. Before a batch is sent, every sample at or before
// its series' high-water mark (the last timestamp the receiver accepted, remote_write_hwm.h,
// kept in the state dir) is skipped and counted: what the engine re-emits after a crash is
// never sent twice. A 4xx that names samples (out of order, duplicate, out of bounds) refuses
// the whole request in Prometheus: the batch is split in halves and each resent, so only the
// offending samples are rejected (counted per reason); at most kMaxSplits resends per batch.
//
// The request in flight is kept in <state_dir>/remote_write.outbox until its answer is known and
// resent unchanged at the next start (remote_write_outbox.h): a crash after the receiver stored it
// but before its 2xx arrived makes nothing refused. A receiver that holds samples the sink does not
// know it holds (marks lost: .hwm deleted, URL renamed) refuses them; the sink then cuts the
// samples from before its start, oldest first, in a few resends (remote_write_cuts.h).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/sinks/remote_write_http.h"
#include "server/sinks/remote_write_hwm.h"
#include "server/sinks/remote_write_outbox.h"
#include "server/sinks/remote_write_proto.h"
#include "server/sinks/remote_write_series.h"
#include "server/sinks/sink.h"

namespace statherd::server {

struct RemoteWriteSinkOptions {
  RwUrl url;                                  // parse_remote_write_url()
  uint64_t queue_max_samples = 500'000;       // beyond: drop oldest, counted
  uint64_t batch_max_samples = 2'000;         // one request at most this many samples
  std::chrono::milliseconds timeout{10'000};  // one request, resolve to answer
  std::chrono::milliseconds backoff_initial{250};
  std::chrono::milliseconds backoff_max{30'000};
  std::chrono::milliseconds stop_timeout{10'000};  // stop() flushes at most this long
  std::string hwm_path;  // <state_dir>/remote_write.hwm; empty: the marks are not persisted
                         // (nor the outbox, <same dir>/remote_write.outbox)
  std::function<int64_t()> clock_ms;  // wall clock in unix ms; empty: the system clock
};

class RemoteWriteSink : public Sink {
 public:
  struct Counters {
    uint64_t samples_queued = 0, samples_sent = 0;
    uint64_t samples_dropped = 0;    // queue full (oldest first) or unsent at stop
    uint64_t samples_rejected = 0;   // refused with a non-retryable 4xx (after splitting)
    uint64_t rejected_by_reason[4] = {};  // indexed by RwReject; sums to samples_rejected
    uint64_t samples_skipped = 0;    // at or before their series' high-water mark: not sent
    uint64_t batch_splits = 0;       // refused batches split in two and resent
    uint64_t stale_cuts = 0;         // refused batches resent without their oldest samples
    uint64_t requests = 0, request_failures = 0, retries = 0;
    uint64_t reemits_skipped = 0;
    uint64_t queue_depth = 0;
    // Taken from the queue, being sent or retried. Every snapshot satisfies queued == sent +
    // dropped + rejected + skipped + queue_depth + samples_in_flight.
    uint64_t samples_in_flight = 0;
    int last_status = 0;
  };

  explicit RemoteWriteSink(RemoteWriteSinkOptions options);
  ~RemoteWriteSink() override;  // stop()s if still running

  std::string name() const override { return "remote_write"; }
  void emit(const IntervalOutput& out) override;  // never blocks on the network
  void stop() override;                           // flush with options.stop_timeout, join
  Counters counters() const;
  // SIGHUP: new URL, bounds and timeouts. Queued samples stay queued and go to the new URL (a
  // batch being retried is re-sent there at once); a smaller queue bound drops the oldest.
  void reconfigure(RemoteWriteSinkOptions options);
  RemoteWriteSinkOptions options() const;

  // Queue the samples of `series` (one sample each, as emit() makes them); tests call it.
  void enqueue(std::vector<RwSeries> series);

 private:
  enum class Outcome : uint8_t { Sent, Refused, Dropped };
  struct Attempt {
    Outcome outcome = Outcome::Sent;
    int status = 0;
    std::string error;
  };
  struct Request {
    std::string body;        // snappy-compressed WriteRequest
    RwMarks marks;           // what a 2xx proves the receiver holds
    uint64_t samples = 0;    // this run's samples in it
    bool left_over = false;  // the previous run's outbox: not in this run's counters
  };
  static constexpr int kMaxSplits = 64;

  void run();
  std::vector<RwSeries> take_batch();            // mutex_ held
  // Sends `batch`, split and resent where the receiver refuses some of its samples.
  void deliver(std::vector<RwSeries> batch, int& splits_left);
  // After a refusal for samples: cuts samples from before the epoch (remote_write_cuts.h) and
  // resends. True when the batch is settled; false: `a` is the last refusal of what is left.
  bool cut_held_samples(std::vector<RwSeries>& batch, Attempt& a);
  void reject(uint64_t samples, RwReject reason);
  // Sent and Dropped settle the request's samples in the counters; Refused leaves them in flight.
  Attempt send_with_retry(const std::vector<RwSeries>& batch);
  Attempt send_with_retry(const Request& req);
  void resend_left_over();  // the previous run's outbox, before anything else
  std::chrono::milliseconds attempt_timeout(const RemoteWriteSinkOptions& opt) const;
  int64_t now_ms() const;

  RemoteWriteSinkOptions options_;
  std::mutex build_mutex_;                        // guards builder_ (emit() callers)
  RwSeriesBuilder builder_;                       // records -> series, named as /metrics
  RwHighWater hwm_;                               // mutex_ held
  RwOutbox outbox_;                               // sender thread only
  int64_t epoch_ms_ = 0;  // start, or the last URL change (mutex_ held)
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<RwSeries> queue_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point stop_deadline_{};
  uint64_t options_generation_ = 0;  // bumped by reconfigure()
  Counters counters_;
  std::thread thread_;
};

}  // namespace statherd::server
