#include "server/sinks/graphite.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <span>
#include <vector>

#include "common/log.h"
#include "common/thread_name.h"
#include "common/shortest_number.h"
#include "server/sinks/graphite_socket.h"
#include "server/sinks/recent_paths.h"

namespace statherd::server {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::optional<std::string> format_graphite_value(double value) {
  if (!std::isfinite(value)) return std::nullopt;
  char buf[32];
  return std::string(buf, write_shortest(buf, value));
}

// The sender thread's state: connection, pacing of new series, backoff.
class GraphiteSink::Sender {
 public:
  explicit Sender(GraphiteSink& sink) : sink_(sink) {
    std::lock_guard lock(sink_.mutex_);
    opt_ = sink_.options_;
    generation_ = sink_.options_generation_;
    backoff_ = opt_.backoff_initial;
    tokens_ = static_cast<double>(opt_.max_new_series_per_minute);
    last_refill_ = Clock::now();
  }
  ~Sender() { disconnect(); }

  void run() {
    Batch batch;
    while (take_batch(batch)) {
      if (batch.lines > 0) send(batch);
      batch.text.clear();  // keeps its capacity for the next batch
      batch.lines = 0;
      log_drops();
    }
    log_drops();
  }

 private:
  bool paced() const { return opt_.max_new_series_per_minute > 0; }

  void refill() {
    auto now = Clock::now();
    double per_ms = static_cast<double>(opt_.max_new_series_per_minute) / 60'000.0;
    tokens_ += per_ms * static_cast<double>(
                            std::chrono::duration_cast<milliseconds>(now - last_refill_).count());
    tokens_ = std::min(tokens_, static_cast<double>(opt_.max_new_series_per_minute));
    last_refill_ = now;
  }

  // A line may go now if its path was sent before or the new-series budget allows it.
  bool admit(std::string_view path) {
    if (!paced()) return true;
    const auto now = Clock::now();
    if (sent_paths_.seen(path, now)) return true;
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    sent_paths_.add(path, now);
    return true;
  }

  struct Batch {
    std::string text;
    uint64_t lines = 0;
  };

  // Moves the front block's lines into `batch` while it holds less than batch_bytes; unpaced
  // as one run of bytes, paced line by line (a line not admitted waits in delayed_).
  void take_from_front_locked(Batch& batch) {
    GraphiteLineBlock& block = sink_.queue_.front();
    const size_t from = block.first;
    size_t i = from;
    if (!paced()) {
      for (size_t bytes = batch.text.size(); i < block.ends.size() && bytes < opt_.batch_bytes;
           ++i)
        bytes += block.ends[i] - block.start(i);
      batch.text.append(block.text, block.start(from), block.start(i) - block.start(from));
      batch.lines += i - from;
    } else {
      for (; i < block.ends.size() && batch.text.size() < opt_.batch_bytes; ++i) {
        if (admit(block.path(i))) {
          batch.text.append(block.line(i));
          ++batch.lines;
        } else {
          delay_locked(Line{std::string(block.line(i)), block.path_lens[i]});
        }
      }
    }
    sink_.queued_lines_ -= i - from;
    block.first = i;
    if (block.left() == 0) {
      // A block grown past its hand-off size (a first emit, longer lines) is not kept.
      if (sink_.spare_.size() < kSpareBlocks && block.text.capacity() <= kSpareMaxBytes) {
        block.text.clear();
        block.ends.clear();
        block.path_lens.clear();
        block.first = 0;
        sink_.spare_.push_back(std::move(block));
      }
      sink_.queue_.pop_front();
    }
  }

  // Moves up to batch_bytes of admissible lines into `batch`. Returns false when stopped and
  // nothing is left to send (or the stop deadline passed).
  bool take_batch(Batch& batch) {
    std::unique_lock lock(sink_.mutex_);
    while (true) {
      if (generation_ != sink_.options_generation_) adopt_options_locked();
      bool stopping = sink_.stopping_;
      if (stopping && Clock::now() >= sink_.stop_deadline_) {
        drop_leftovers_locked();
        return false;
      }
      if (paced()) refill();
      while (!delayed_.empty() && batch.text.size() < opt_.batch_bytes &&
             admit(std::string_view(delayed_.front().text).substr(0, delayed_.front().path_len))) {
        batch.text += delayed_.front().text;
        ++batch.lines;
        delayed_.pop_front();
      }
      while (!sink_.queue_.empty() && batch.text.size() < opt_.batch_bytes)
        take_from_front_locked(batch);
      sink_.counters_.queue_depth = sink_.queued_lines_ + delayed_.size();
      if (batch.lines > 0) return true;
      if (stopping && delayed_.empty()) return false;
      auto wake_at = stopping ? sink_.stop_deadline_ : Clock::time_point::max();
      if (!delayed_.empty()) wake_at = std::min(wake_at, next_token_time());
      if (wake_at == Clock::time_point::max()) {
        sink_.wake_.wait(lock);
      } else {
        sink_.wake_.wait_until(lock, wake_at);
      }
    }
  }

  // After reconfigure(): a new address closes the connection (the next batch connects there)
  // and restarts the backoff; a new pacing budget starts full.
  void adopt_options_locked() {
    generation_ = sink_.options_generation_;
    GraphiteSinkOptions next = sink_.options_;
    next.stdout_fd = opt_.stdout_fd;
    if (next.address != opt_.address) {
      disconnect();
      backoff_ = next.backoff_initial;
      log::info("graphite: address changed from " + opt_.address + " to " + next.address);
    }
    if (next.max_new_series_per_minute != opt_.max_new_series_per_minute)
      tokens_ = static_cast<double>(next.max_new_series_per_minute);
    opt_ = std::move(next);
  }

  Clock::time_point next_token_time() const {
    double per_ms = static_cast<double>(opt_.max_new_series_per_minute) / 60'000.0;
    auto wait = milliseconds(static_cast<int64_t>(std::ceil((1.0 - tokens_) / per_ms)) + 1);
    return Clock::now() + wait;
  }

  void delay_locked(Line&& line) {
    ++sink_.counters_.lines_delayed;
    delayed_.push_back(std::move(line));
    if (delayed_.size() > opt_.queue_max_lines) {
      delayed_.pop_front();
      ++sink_.counters_.lines_dropped;
    }
  }

  void drop_leftovers_locked() {
    uint64_t left = sink_.queued_lines_ + delayed_.size();
    sink_.counters_.lines_dropped += left;
    sink_.queue_.clear();
    sink_.queued_lines_ = 0;
    delayed_.clear();
    if (left > 0) {
      log::warn("graphite: stop deadline passed with " + std::to_string(left) +
                " lines unsent; they are dropped\nhint: check that " + opt_.address +
                " accepts connections");
    }
  }

  Clock::time_point deadline_for(milliseconds timeout) const {
    auto d = Clock::now() + timeout;
    std::lock_guard lock(sink_.mutex_);
    return sink_.stopping_ ? std::min(d, sink_.stop_deadline_) : d;
  }

  // Sends the batch, reconnecting with backoff, until it is written or the stop deadline passes.
  void send(const Batch& batch) {
    const std::string& buffer = batch.text;
    while (true) {
      if (ensure_connected() &&
          write_all(fd_, !to_stdout(), buffer, deadline_for(opt_.write_timeout))) {
        std::lock_guard lock(sink_.mutex_);
        sink_.counters_.lines_sent += batch.lines;
        return;
      }
      if (fd_ >= 0) {
        std::lock_guard lock(sink_.mutex_);
        ++sink_.counters_.write_failures;
        log::warn("graphite: write to " + opt_.address + " failed or timed out; reconnecting");
      }
      disconnect();
      if (!wait_backoff()) {
        std::lock_guard lock(sink_.mutex_);
        sink_.counters_.lines_dropped += batch.lines;
        dropped_at_stop_ += batch.lines;  // not a full queue: the stop deadline passed
        return;
      }
      std::lock_guard lock(sink_.mutex_);  // reconfigured while retrying: the batch goes there
      if (generation_ != sink_.options_generation_) adopt_options_locked();
    }
  }

  bool to_stdout() const { return opt_.address == "-"; }

  bool ensure_connected() {
    if (to_stdout()) {
      fd_ = opt_.stdout_fd;
      return true;
    }
    if (fd_ >= 0 && !peer_closed(fd_)) return true;
    disconnect();
    std::string error;
    fd_ = connect_to(opt_.address, deadline_for(opt_.connect_timeout), error);
    std::lock_guard lock(sink_.mutex_);
    if (fd_ < 0) {
      ++sink_.counters_.connect_failures;
      log::warn("graphite: " + error + "\nhint: is carbon listening there? retrying in " +
                std::to_string(backoff_.count()) + " ms");
      return false;
    }
    ++sink_.counters_.connects;
    backoff_ = opt_.backoff_initial;
    log::info("graphite: connected to " + opt_.address);
    return true;
  }

  void disconnect() {
    if (fd_ >= 0 && !to_stdout()) ::close(fd_);
    fd_ = -1;
  }

  // Sleeps the current backoff (doubling it); false if the stop deadline passes meanwhile.
  // A stop that begins during the wait ends it at once (one more try, then waits are bounded
  // by the stop deadline): a 30 s backoff must not hold the shutdown past stop_timeout.
  bool wait_backoff() {
    std::unique_lock lock(sink_.mutex_);
    auto until = Clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, opt_.backoff_max);
    const bool was_stopping = sink_.stopping_;
    if (was_stopping) until = std::min(until, sink_.stop_deadline_);
    sink_.wake_.wait_until(lock, until, [&] {
      return (sink_.stopping_ && (!was_stopping || Clock::now() >= sink_.stop_deadline_)) ||
             generation_ != sink_.options_generation_;
    });
    return !(sink_.stopping_ && Clock::now() >= sink_.stop_deadline_);
  }

  void log_drops() {
    uint64_t dropped;
    {
      std::lock_guard lock(sink_.mutex_);
      dropped = sink_.counters_.lines_dropped;
    }
    auto now = Clock::now();
    if (dropped == logged_drops_ || now - last_drop_log_ < std::chrono::seconds(10)) return;
    const uint64_t at_stop = dropped_at_stop_ - logged_at_stop_;
    const uint64_t full = dropped - logged_drops_ - at_stop;
    if (full > 0)
      log::warn("graphite: " + std::to_string(full) + " lines dropped (queue full, " +
                "queue_max_lines=" + std::to_string(opt_.queue_max_lines) +
                ")\nhint: carbon is slow or down; raise graphite.queue_max_lines or fix the link");
    if (at_stop > 0)
      log::warn("graphite: " + std::to_string(at_stop) + " lines in flight dropped at the stop " +
                "deadline (stop_timeout)\nhint: check that " + opt_.address +
                " accepts connections");
    logged_drops_ = dropped;
    logged_at_stop_ = dropped_at_stop_;
    last_drop_log_ = now;
  }

  GraphiteSink& sink_;
  GraphiteSinkOptions opt_;  // the sender's copy, refreshed from sink_.options_ by generation
  uint64_t generation_ = 0;
  int fd_ = -1;
  uint64_t dropped_at_stop_ = 0, logged_at_stop_ = 0;
  milliseconds backoff_;
  double tokens_ = 0;
  Clock::time_point last_refill_;
  // Paths sent in the last 1-2 hours: they skip the new-series budget (recent_paths.h).
  RecentPaths sent_paths_{std::chrono::hours(1), Clock::now()};
  std::deque<Line> delayed_;
  uint64_t logged_drops_ = 0;
  Clock::time_point last_drop_log_{};
};

namespace {

GraphiteSeriesCache::Naming naming_of(const GraphiteSinkOptions& o) {
  return {o.prefix, o.tags, o.rules};
}

}  // namespace

GraphiteSink::GraphiteSink(GraphiteSinkOptions options)
    : options_(std::move(options)), cache_(naming_of(options_)) {
  options_.queue_max_lines = std::max<uint64_t>(1, options_.queue_max_lines);
  thread_ = std::thread([this] {
    name_this_thread("graphite-send");
    Sender(*this).run();
  });
}

GraphiteSink::~GraphiteSink() { stop(); }

// The lines go to the sender a block of kHandOffBytes at a time: it writes one while the next
// is made, so an emit holds a few MB of text, not the interval's (~70 MB at 400k series).
void GraphiteSink::emit(const IntervalOutput& out) {
  static_assert(kHandOffBytes < GraphiteLineBlock::kBlockBytes);
  // Sized for the lines of the last emit's mean length (plus slack).
  const size_t per_line = last_emit_lines_ ? last_emit_bytes_ / last_emit_lines_ + 8 : 0;
  auto fresh_block = [&] {
    GraphiteLineBlock b;
    {
      std::lock_guard lock(mutex_);
      if (!spare_.empty()) {
        b = std::move(spare_.back());
        spare_.pop_back();
      }
    }
    if (per_line > 0) {
      const size_t n = std::min(out.stats.size(), kHandOffBytes / per_line + 1);
      b.text.reserve(n * per_line);
      b.ends.reserve(n);
      b.path_lens.reserve(n);
    }
    return b;
  };
  GraphiteLineBlock block = fresh_block();
  uint64_t lines = 0, bytes = 0, skipped = 0, filtered = 0;
  const std::string ts = " " + std::to_string(out.start_s) + "\n";
  cache_.begin_emit();
  for (const RollupRecord& record : out.records) {
    GraphiteSeries& series = cache_.series(record.key, record.kind);
    const std::span<const Stat> stats = out.stats_of(record);
    if (series.slots.empty()) series.slots.reserve(stats.size());
    for (size_t i = 0; i < stats.size(); ++i) {
      if (!std::isfinite(stats[i].value)) {
        ++skipped;
        continue;
      }
      const GraphiteSeries::Slot& slot = cache_.slot(series, i, stats[i].name);
      if (!slot.passes) {
        ++filtered;
        continue;
      }
      if (block.text.size() >= kHandOffBytes) {
        bytes += block.text.size();
        queue_block(std::move(block));
        block = fresh_block();
      }
      block.add(series.path, cache_.component(slot), stats[i].value, ts);
      ++lines;
    }
  }
  cache_.end_emit();
  bytes += block.text.size();
  queue_block(std::move(block));
  last_emit_bytes_ = bytes;
  last_emit_lines_ = lines;
  std::lock_guard lock(mutex_);
  counters_.non_finite_skipped += skipped;
  counters_.lines_filtered += filtered;
  counters_.path_collisions = cache_.collisions();
}

void GraphiteSink::queue_block(GraphiteLineBlock&& block) {
  const uint64_t lines = block.left();
  if (lines == 0) return;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      counters_.lines_dropped += lines;
      return;
    }
    counters_.lines_queued += lines;
    queued_lines_ += lines;
    queue_.push_back(std::move(block));
    drop_oldest_locked(options_.queue_max_lines);
  }
  wake_.notify_one();
}

// Drops the oldest queued lines beyond max_lines (counted).
void GraphiteSink::drop_oldest_locked(uint64_t max_lines) {
  while (queued_lines_ > max_lines) {
    GraphiteLineBlock& front = queue_.front();
    const uint64_t drop = std::min<uint64_t>(front.left(), queued_lines_ - max_lines);
    front.first += drop;
    queued_lines_ -= drop;
    counters_.lines_dropped += drop;
    if (front.left() == 0) queue_.pop_front();
  }
  counters_.queue_depth = queued_lines_;
}

void GraphiteSink::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      stop_deadline_ = Clock::now() + options_.stop_timeout;
    }
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void GraphiteSink::reconfigure(GraphiteSinkOptions options) {
  options.queue_max_lines = std::max<uint64_t>(1, options.queue_max_lines);
  cache_.configure(naming_of(options));
  {
    std::lock_guard lock(mutex_);
    options_ = std::move(options);
    ++options_generation_;
    drop_oldest_locked(options_.queue_max_lines);  // a smaller bound: drop the oldest
  }
  wake_.notify_all();
}

GraphiteSink::Counters GraphiteSink::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

}  // namespace statherd::server
