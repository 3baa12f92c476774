// GraphiteSink: Carbon's plaintext protocol, `path value timestamp\n`, over TCP (or to stdout
// for address "-"). emit() only formats and queues (bounded, drop-oldest with a counter); a
// sender thread batches, connects with a deadline, reconnects with exponential backoff, writes
// with a deadline (so TCP backpressure slows the sender, never ingest) and paces the creation
// of new series (Carbon drops creations beyond MAX_CREATES_PER_MINUTE silently).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "server/graphite_rules.h"
#include "server/sinks/graphite_cache.h"
#include "server/sinks/graphite_lines.h"
#include "server/sinks/sink.h"

namespace statherd::server {

struct GraphiteSinkOptions {
  std::string address;                      // "host:port", or "-" for stdout
  std::string prefix = "statherd";          // first path component(s)
  uint64_t queue_max_lines = 1'000'000;     // beyond: drop oldest, counted
  uint64_t max_new_series_per_minute = 0;   // 0: unlimited; else lines of never-sent paths wait
  size_t batch_bytes = 64 * 1024;           // one write() at most this large
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds write_timeout{10'000};
  std::chrono::milliseconds stop_timeout{10'000};   // stop() flushes at most this long
  std::chrono::milliseconds backoff_initial{250};
  std::chrono::milliseconds backoff_max{30'000};
  int stdout_fd = 1;                        // for "-" (tests pass a pipe)
  bool tags = false;                        // sample tags as ";k=v" (graphite_naming.h)
  GraphiteRules rules;                      // allow/forbid/prune on the path (graphite_rules.h)
};

// Shortest text that parses back to the same double ("0.1", "1e+21", "42"); nullopt for NaN/Inf.
std::optional<std::string> format_graphite_value(double value);

class GraphiteSink : public Sink {
 public:
  struct Counters {
    uint64_t lines_queued = 0, lines_sent = 0, lines_dropped = 0, lines_delayed = 0;
    uint64_t non_finite_skipped = 0, connects = 0, connect_failures = 0, write_failures = 0;
    uint64_t queue_depth = 0;
    uint64_t lines_filtered = 0;  // refused by options.rules (forbidden or pruned)
    uint64_t path_collisions = 0; // distinct series that sanitize to one path (graphite_collisions.h)
  };

  explicit GraphiteSink(GraphiteSinkOptions options);
  ~GraphiteSink() override;  // stop()s if still running

  std::string name() const override { return "graphite"; }
  void emit(const IntervalOutput& out) override;  // never blocks on the network
  void stop() override;                           // flush with options.stop_timeout, join
  Counters counters() const;
  // SIGHUP: new options for everything after this call. Lines already queued stay queued and
  // go to the new address (nothing buffered is lost); prefix, tags and rules apply to the next
  // emit() (the per-series cache is emptied when they change); the sender thread takes
  // address, timeouts and pacing before its next batch.
  // Call it from the thread that calls emit().
  void reconfigure(GraphiteSinkOptions options);
  const GraphiteSinkOptions& options() const { return options_; }

 private:
  struct Line {             // a line the sender's pacing holds back
    std::string text;       // "path value ts\n"
    uint32_t path_len;      // text.substr(0, path_len) is the path
  };
  class Sender;
  void drop_oldest_locked(uint64_t max_lines);
  void queue_block(GraphiteLineBlock&& block);  // to the sender (or dropped when stopping)

  GraphiteSinkOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<GraphiteLineBlock> queue_;
  uint64_t queued_lines_ = 0;  // lines left in queue_
  // Sent blocks, emptied with their buffers kept, for the next emit (no allocation, no page
  // faults for the next block's text). At most kSpareBlocks.
  static constexpr size_t kSpareBlocks = 2;
  // emit() hands off a block this big. 8 MB held a small fleet's whole interval (59k lines at
  // 1 s from 20k series: ~5 MB) in one block, three of them at once with the spares: 16 MB of
  // the heap's peak (heaptrack). 1 MB blocks hold a few MB at any fleet size while the
  // sender keeps up, and a hand-off per MB costs nothing measurable.
  static constexpr size_t kHandOffBytes = 1 << 20;
  static constexpr size_t kSpareMaxBytes = kHandOffBytes + kHandOffBytes / 2;
  std::vector<GraphiteLineBlock> spare_;
  // The last emit's first block: its mean line length sizes the next one's buffers at once
  // rather than growing (and copying) them line by line. emit() only.
  size_t last_emit_bytes_ = 0, last_emit_lines_ = 0;  // sizes the next emit's blocks
  bool stopping_ = false;
  std::chrono::steady_clock::time_point stop_deadline_{};
  uint64_t options_generation_ = 0;  // bumped by reconfigure(); the sender re-reads options_
  Counters counters_;
  GraphiteSeriesCache cache_;  // used by emit() (and reconfigure(), on the same thread) only
  std::thread thread_;
  friend class Sender;
};

}  // namespace statherd::server
