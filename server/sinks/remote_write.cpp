#include "server/sinks/remote_write.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>

#include "common/log.h"
#include "common/thread_name.h"
#include "server/sinks/remote_write_cuts.h"

namespace statherd::server {

namespace {

uint64_t sample_count(const std::vector<RwSeries>& batch) {
  uint64_t n = 0;
  for (const RwSeries& s : batch) n += s.samples.size();
  return n;
}

const std::vector<std::pair<std::string, std::string>>& remote_write_headers() {
  static const std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Encoding", "snappy"},
      {"Content-Type", "application/x-protobuf"},
      {"X-Prometheus-Remote-Write-Version", "0.1.0"},
      {"User-Agent", "statherd-server"}};
  return headers;
}

// <dir>/remote_write.outbox next to <dir>/remote_write.hwm; empty when nothing is persisted.
std::string outbox_path(const std::string& hwm_path) {
  if (hwm_path.empty()) return {};
  const size_t slash = hwm_path.rfind('/');
  return (slash == std::string::npos ? std::string() : hwm_path.substr(0, slash + 1)) +
         "remote_write.outbox";
}

}  // namespace

RemoteWriteSink::RemoteWriteSink(RemoteWriteSinkOptions options)
    : options_(std::move(options)),
      hwm_(options_.hwm_path, options_.url.to_string()),
      outbox_(outbox_path(options_.hwm_path)) {
  epoch_ms_ = now_ms();
  options_.batch_max_samples = std::max<uint64_t>(options_.batch_max_samples, 1);
  options_.queue_max_samples = std::max<uint64_t>(options_.queue_max_samples, 1);
  thread_ = std::thread([this] {
    name_this_thread("remote-write");
    run();
  });
}

RemoteWriteSink::~RemoteWriteSink() { stop(); }

int64_t RemoteWriteSink::now_ms() const {
  if (options_.clock_ms) return options_.clock_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void RemoteWriteSink::emit(const IntervalOutput& out) {
  if (out.reemit) {
    std::lock_guard lock(mutex_);
    ++counters_.reemits_skipped;
    return;
  }
  std::vector<RwSeries> series;
  {
    std::lock_guard lock(build_mutex_);
    builder_.build(out, series);
  }
  enqueue(std::move(series));
}

void RemoteWriteSink::enqueue(std::vector<RwSeries> series) {
  {
    std::lock_guard lock(mutex_);
    for (RwSeries& s : series) {
      counters_.samples_queued += s.samples.size();
      queue_.push_back(std::move(s));
    }
    while (queue_.size() > options_.queue_max_samples) {
      counters_.samples_dropped += queue_.front().samples.size();
      queue_.pop_front();
    }
    counters_.queue_depth = queue_.size();
  }
  wake_.notify_one();
}

void RemoteWriteSink::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return;
    if (!stopping_) {
      stopping_ = true;
      stop_deadline_ = std::chrono::steady_clock::now() + options_.stop_timeout;
    }
  }
  wake_.notify_all();
  thread_.join();
}

void RemoteWriteSink::reconfigure(RemoteWriteSinkOptions options) {
  options.batch_max_samples = std::max<uint64_t>(options.batch_max_samples, 1);
  options.queue_max_samples = std::max<uint64_t>(options.queue_max_samples, 1);
  {
    std::lock_guard lock(mutex_);
    const bool moved = options.url.to_string() != options_.url.to_string();
    if (moved)
      log::info("remote_write: URL changed from " + options_.url.to_string() + " to " +
                options.url.to_string());
    options_ = std::move(options);
    if (moved) epoch_ms_ = now_ms();
    hwm_.set_url(options_.url.to_string());
    ++options_generation_;
    while (queue_.size() > options_.queue_max_samples) {
      counters_.samples_dropped += queue_.front().samples.size();
      queue_.pop_front();
    }
    counters_.queue_depth = queue_.size();
  }
  wake_.notify_all();
}

RemoteWriteSinkOptions RemoteWriteSink::options() const {
  std::lock_guard lock(mutex_);
  return options_;
}

RemoteWriteSink::Counters RemoteWriteSink::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

// Up to batch_max_samples samples from the queue's front, merged per series (queue order is
// time order, so each series' samples stay sorted).
std::vector<RwSeries> RemoteWriteSink::take_batch() {
  std::vector<RwSeries> batch;
  std::map<std::string, size_t> index;
  uint64_t samples = 0;
  while (!queue_.empty() && samples < options_.batch_max_samples) {
    RwSeries s = std::move(queue_.front());
    queue_.pop_front();
    samples += s.samples.size();
    auto [it, added] = index.try_emplace(rw_series_key(s.labels), batch.size());
    if (added) {
      batch.push_back(std::move(s));
    } else {
      auto& into = batch[it->second].samples;
      into.insert(into.end(), s.samples.begin(), s.samples.end());
    }
  }
  counters_.queue_depth = queue_.size();
  const uint64_t skipped = hwm_.filter(batch);
  counters_.samples_skipped += skipped;
  counters_.samples_in_flight = samples - skipped;
  return batch;
}

void RemoteWriteSink::deliver(std::vector<RwSeries> batch, int& splits_left) {
  Attempt a = send_with_retry(batch);
  if (a.outcome != Outcome::Refused) return;
  if (splits_left == kMaxSplits && cut_held_samples(batch, a)) return;  // once per queued batch
  const uint64_t samples = sample_count(batch);
  const RwReject reason = classify_remote_write_rejection(a.error);
  std::string answer = a.error;
  while (!answer.empty() && std::isspace(static_cast<unsigned char>(answer.back())))
    answer.pop_back();
  const std::string where = "remote_write " + options().url.to_string() + ": HTTP " +
                            std::to_string(a.status) + " " + answer;
  std::vector<RwSeries> second;
  if (reason != RwReject::Other && splits_left > 0 && split_rw_batch(batch, second)) {
    if (splits_left == kMaxSplits)  // once per batch taken from the queue
      log::warn(where + "; resending the " + std::to_string(samples) + " samples in halves to "
                "keep the valid ones\nhint: " + rw_reject_name(reason) + " samples mean the "
                "receiver holds newer samples of these series (another writer?)");
    --splits_left;
    {
      std::lock_guard lock(mutex_);
      ++counters_.batch_splits;
    }
    deliver(std::move(batch), splits_left);
    deliver(std::move(second), splits_left);
    return;
  }
  reject(samples, reason);
  log::warn(where + "; rejected " + std::to_string(samples) + " samples (" +
            rw_reject_name(reason) + ")\nhint: a 4xx is not retried; out of order or duplicate "
            "samples mean another writer sends these series, or the receiver holds newer ones; "
            "otherwise check the URL path and the receiver's logs");
}

void RemoteWriteSink::reject(uint64_t samples, RwReject reason) {
  std::lock_guard lock(mutex_);
  counters_.samples_rejected += samples;
  counters_.rejected_by_reason[static_cast<int>(reason)] += samples;
  counters_.samples_in_flight -= samples;
}

bool RemoteWriteSink::cut_held_samples(std::vector<RwSeries>& batch, Attempt& a) {
  RwReject reason = classify_remote_write_rejection(a.error);
  if (reason == RwReject::Other) return false;
  std::vector<int64_t> cuts;
  {
    std::lock_guard lock(mutex_);
    cuts = rw_stale_cuts(batch, epoch_ms_, hwm_.hint_ms());
  }
  if (cuts.empty()) return false;
  const std::string first_answer = a.error.substr(0, a.error.find('\n'));
  uint64_t dropped = 0, requests = 0;
  int64_t last_cut = cuts.front();
  bool settled = false;
  for (int64_t cut : cuts) {
    last_cut = cut;
    const uint64_t n = rw_drop_at_or_before(batch, cut);
    dropped += n;
    reject(n, reason);
    {
      std::lock_guard lock(mutex_);
      ++counters_.stale_cuts;
    }
    if (batch.empty()) {
      settled = true;
      break;
    }
    ++requests;
    a = send_with_retry(batch);
    if (a.outcome != Outcome::Refused) {
      settled = true;
      break;
    }
    reason = classify_remote_write_rejection(a.error);
    if (reason == RwReject::Other) break;
  }
  log::warn("remote_write " + options().url.to_string() + ": refused (" + first_answer +
            "): the receiver holds samples sent before this server's start or URL change; "
            "dropped " + std::to_string(dropped) + " samples at or before " +
            std::to_string(last_cut) + " ms in " + std::to_string(requests) + " resends" +
            (settled ? "" : ", the rest still refused") +
            "\nhint: expected once after remote_write.hwm was lost or the URL renamed; the "
            "totals continue exact with the next samples");
  return settled;
}

RemoteWriteSink::Attempt RemoteWriteSink::send_with_retry(const std::vector<RwSeries>& batch) {
  Request req;
  req.body = snappy_block_compress(encode_write_request(batch));
  req.marks = rw_marks_of(batch);
  req.samples = sample_count(batch);
  return send_with_retry(req);
}

// POSTs the request until it is accepted, refused for good, or the stop deadline passes. The
// outbox holds it meanwhile (kept when the answer stays unknown at stop).
RemoteWriteSink::Attempt RemoteWriteSink::send_with_retry(const Request& req) {
  RemoteWriteSinkOptions opt = options();  // this attempt's URL and timeouts
  if (!req.left_over) outbox_.put({opt.url.to_string(), req.marks, req.body});
  uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    generation = options_generation_;
  }
  auto backoff = opt.backoff_initial;
  // mutex_ held: the batch leaves the in-flight gauge in the same step as it enters an outcome.
  auto settle = [&](uint64_t& outcome) {
    outcome += req.samples;
    counters_.samples_in_flight -= req.samples;
  };
  bool maybe_stored = false;  // an earlier attempt was sent whole, its answer lost
  for (;;) {
    RwPostResult r = http_post(opt.url, req.body, remote_write_headers(), attempt_timeout(opt));
    RwRetry what = classify_remote_write_status(r.status);
    if (what == RwRetry::Drop && maybe_stored &&
        classify_remote_write_rejection(r.error) != RwReject::Other) {
      // Refused as out of order or duplicate after an attempt whose answer was lost: that attempt
      // was stored (the older samples of a series are refused now, the newest is identical).
      log::info("remote_write " + opt.url.to_string() + ": the receiver already held a request "
                "whose answer was lost (" + std::to_string(req.marks.size()) + " series)");
      what = RwRetry::Done;
    }
    maybe_stored = maybe_stored || r.maybe_stored;
    std::unique_lock lock(mutex_);
    ++counters_.requests;
    counters_.last_status = r.status;
    if (what == RwRetry::Done) {
      settle(counters_.samples_sent);
      const std::string floor_file = hwm_.accept_marks(req.marks);
      lock.unlock();
      hwm_.write_file(floor_file);  // the floor first: a crash in between resends the outbox
      outbox_.clear();
      return {Outcome::Sent, r.status, {}};
    }
    ++counters_.request_failures;
    const std::string where = "remote_write " + opt.url.to_string() + ": ";
    if (what == RwRetry::Drop) {
      lock.unlock();
      if (!req.left_over) outbox_.clear();  // refused: the receiver rolled it back
      return {Outcome::Refused, r.status, r.error};
    }
    const auto wake_at = std::chrono::steady_clock::now() + backoff;
    if (stopping_ && wake_at > stop_deadline_) {
      settle(counters_.samples_dropped);
      return {Outcome::Dropped, r.status, r.error};
    }
    log::warn(where + (r.status ? "HTTP " + std::to_string(r.status) + " " + r.error : r.error) +
              "; retrying in " + std::to_string(backoff.count()) + " ms (hint: is the receiver "
              "up, and started with --web.enable-remote-write-receiver?)");
    wake_.wait_until(lock, wake_at, [&] {
      return (stopping_ && wake_at > stop_deadline_) || generation != options_generation_;
    });
    if (stopping_ && std::chrono::steady_clock::now() >= stop_deadline_) {
      settle(counters_.samples_dropped);
      return {Outcome::Dropped, r.status, r.error};
    }
    ++counters_.retries;
    if (generation != options_generation_) {  // reconfigured: retry at the new URL right away
      generation = options_generation_;
      opt = options_;
      backoff = opt.backoff_initial;
      continue;
    }
    backoff = std::min(backoff * 2, opt.backoff_max);
  }
}

// One request's deadline: its timeout, and once stopping no later than the stop deadline, so a
// receiver that never answers cannot hold the stop for the whole timeout (hostile review: a
// SIGTERM took stop_timeout + timeout).
std::chrono::milliseconds RemoteWriteSink::attempt_timeout(const RemoteWriteSinkOptions& opt) const {
  std::lock_guard lock(mutex_);
  if (!stopping_) return opt.timeout;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      stop_deadline_ - std::chrono::steady_clock::now());
  return std::clamp(left, std::chrono::milliseconds(1), std::max(opt.timeout,
                                                                 std::chrono::milliseconds(1)));
}

void RemoteWriteSink::resend_left_over() {
  std::optional<RwPending> p = outbox_.left_over();
  if (!p) return;
  const std::string url = options().url.to_string();
  log::info("remote_write: resending to " + url + " the request in flight when the previous run "
            "stopped (" + std::to_string(p->marks.size()) + " series, sent to " + p->url + ")");
  Request req;
  req.body = std::move(p->body);
  req.marks = std::move(p->marks);
  req.left_over = true;
  const Attempt a = send_with_retry(req);
  if (a.outcome == Outcome::Dropped) return;  // stopping: it stays in the outbox
  if (a.outcome == Outcome::Refused) {
    if (classify_remote_write_rejection(a.error) == RwReject::Other) {
      log::warn("remote_write " + url + ": the previous run's last request was refused (status " +
                std::to_string(a.status) + "); dropped\nhint: check the URL and the receiver's "
                "logs");
      outbox_.clear();
      return;
    }
    // Refused as out of order or duplicate: the receiver stored it before the crash (a series
    // with several samples in it is then refused for the older ones). Its marks stand.
    std::unique_lock lock(mutex_);
    const std::string floor_file = hwm_.accept_marks(req.marks);
    lock.unlock();
    hwm_.write_file(floor_file);
    log::info("remote_write " + url + ": the receiver already held the previous run's last "
              "request");
    outbox_.clear();
  }
}

void RemoteWriteSink::run() {
  resend_left_over();
  for (;;) {
    std::vector<RwSeries> batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, all flushed
      if (stopping_ && std::chrono::steady_clock::now() >= stop_deadline_) {
        for (const RwSeries& s : queue_) counters_.samples_dropped += s.samples.size();
        queue_.clear();
        counters_.queue_depth = 0;
        return;
      }
      batch = take_batch();
    }
    if (batch.empty()) continue;  // every sample was at or before its high-water mark
    int splits_left = kMaxSplits;
    deliver(std::move(batch), splits_left);
  }
}

}  // namespace statherd::server
