#include "server/pipeline.h"

#include <boost/asio.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <shared_mutex>

#include "common/log.h"
#include "common/thread_name.h"
#include "server/connection_limits.h"
#include "server/stop_progress.h"
#include "server/wal_committer.h"

namespace statherd::server {

namespace asio = boost::asio;

struct Pipeline::Impl {
  PipelineOptions options;
  Engine& engine;
  MemoryStore& store;
  std::vector<Sink*> sinks;
  asio::thread_pool& reads;
  ServerStatus& status;
  asio::thread_pool thread{1};
  asio::strand<asio::thread_pool::executor_type> pipe{thread.get_executor()};
  asio::steady_timer clock{pipe};
  std::unique_ptr<WalCommitter> committer;  // with a state_dir: group commit of the WAL
  std::atomic<uint64_t> backlog{0};         // batches acknowledged, not applied yet
  bool snapshot_pending = false;            // pipeline thread only
  bool started = false;
  std::atomic<bool> drained{false};
  std::mutex drain_mutex;
  std::shared_mutex admitting;  // ingest holds it shared from the drained check to submit()
  RateLimitedLine backlog_log;

  Impl(PipelineOptions o, Engine& e, MemoryStore& s, std::vector<Sink*> k,
       asio::thread_pool& r, ServerStatus& st)
      : options(std::move(o)), engine(e), store(s), sinks(std::move(k)), reads(r), status(st) {
    asio::post(thread, [] { name_this_thread("pipeline"); });
    if (!options.now_ms) {
      options.now_ms = [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch()).count();
      };
    }
  }

  int64_t now_ms() const { return options.now_ms(); }

  // The store belongs to the read thread: its updates queue there behind running reads. The
  // sinks get an interval first, so a path visible in the store was also handed to them.
  // Each interval is moved into one shared, immutable copy: the sinks and the store read the
  // same one (it was copied whole for the store: every record and stat name once more).
  void dispatch(std::vector<IntervalOutput> outputs) {
    for (IntervalOutput& out : outputs) {
      auto shared = std::make_shared<const IntervalOutput>(std::move(out));
      for (Sink* sink : sinks) sink->emit(*shared);
      asio::post(reads, [this, shared] { store.emit(*shared); });
    }
  }

  // Pipeline thread: fires at each wall-clock interval boundary + grace.
  void schedule_rollup() {
    const int64_t interval = engine.options().interval.count();
    const int64_t grace = engine.options().grace.count();
    const int64_t now = now_ms();
    const int64_t base = now - grace;
    const int64_t boundary =
        (base / interval) * interval - (base < 0 && base % interval ? interval : 0);
    const int64_t next = boundary + interval + grace;
    clock.expires_after(std::chrono::milliseconds(std::max<int64_t>(1, next - now)));
    clock.async_wait([this](const boost::system::error_code& ec) {
      if (ec || drained) return;
      rollup(now_ms());
      schedule_rollup();
    });
  }

  // Pipeline thread: the rollup of every interval that ended, to the sinks and the store.
  void rollup(int64_t now) {
    if (options.before_flush) options.before_flush(now);
    auto started_at = std::chrono::steady_clock::now();
    dispatch(engine.flush(now));
    status.last_rollup_ms = std::chrono::duration<double, std::milli>(
                                std::chrono::steady_clock::now() - started_at).count();
    maybe_snapshot(now);
  }

  // Pipeline thread. The committer rotates to a new WAL file after the records logged so far;
  // their batches were posted here before its callback posts the snapshot, so the snapshot
  // covers exactly the files before the new one.
  void maybe_snapshot(int64_t now) {
    if (!committer || snapshot_pending || !engine.snapshot_due(now, committer->bytes())) return;
    snapshot_pending = true;
    committer->rotate([this](const Result<uint64_t>& next) {
      asio::post(pipe, [this, next] {
        snapshot_pending = false;
        if (!next) return engine.postpone_snapshot(now_ms());  // retried when due again
        Status s = engine.snapshot_at(*next, now_ms());
        if (!s) log::warn("snapshot failed (the WAL keeps growing until one succeeds): " +
                          s.error().to_string());
      });
    });
  }

  // Caller's thread: decode and log the batch; the answer goes out once it is in the WAL, and
  // its apply is queued on the pipeline.
  static constexpr uint64_t kMaxBacklog = 4096;
  void ingest(std::string_view body, std::function<void(IngestOutcome)> answer) {
    std::shared_lock admission(admitting);
    if (drained) return answer(stopping());
    if (backlog.load() >= kMaxBacklog) return answer(busy());
    const int64_t now = now_ms();
    Admission a = engine.admit(body, now);
    if (!a.batch) return answer(std::move(a.outcome));
    if (!committer) {
      engine.logged(*a.batch, true);
      apply_later(std::move(a.batch), now);
      return answer(std::move(a.outcome));
    }
    committer->submit(std::move(a.record),
                      [this, batch = std::move(a.batch), outcome = std::move(a.outcome), now,
                       answer = std::move(answer)](const Status& logged) mutable {
                        engine.note_wal(static_cast<bool>(logged), committer->bytes());
                        engine.logged(*batch, static_cast<bool>(logged));
                        if (!logged) {
                          outcome.http_status = 500;
                          outcome.samples = 0;
                          outcome.message = logged.error().to_string();
                          return answer(std::move(outcome));
                        }
                        apply_later(std::move(batch), now);
                        answer(std::move(outcome));
                      });
  }

  void apply_later(std::shared_ptr<const Batch> batch, int64_t now) {
    ++backlog;
    asio::post(pipe, [this, batch = std::move(batch), now] {
      engine.apply_admitted(*batch, now);
      --backlog;
    });
  }

  // The pipeline is kMaxBacklog batches behind (a rollup far slower than ingest): 503, before
  // the WAL, so the agent keeps the batch in its spool and retries.
  IngestOutcome busy() {
    if (auto line = backlog_log.take("ingest: " + std::to_string(kMaxBacklog) +
                                         " batches wait to be applied; answering 503",
                                     std::chrono::steady_clock::now())) {
      log::warn(*line + "\nhint: the rollup is slower than ingest; see "
                        "statherd_server_rollup_seconds");
    }
    IngestOutcome o;
    o.http_status = 503;
    o.message = "the server is behind applying batches; retry later";
    return o;
  }

  static IngestOutcome stopping() {
    IngestOutcome o;
    o.http_status = 503;
    o.message = "the server is stopping; retry later";
    return o;
  }

  void drain() {
    std::lock_guard once(drain_mutex);
    StopProgress& progress = StopProgress::process();
    progress.step("waiting for the batches being admitted");
    {
      std::unique_lock no_more(admitting);  // every admitted batch is in the committer's queue
      if (drained.exchange(true) || !started) return;
    }
    // What the committer holds is written and its batches queued; then the last interval.
    progress.step("the WAL committer writing and syncing what it holds");
    if (committer) committer->stop();
    progress.step("waiting for the pipeline thread (a rollup in progress)");
    std::promise<void> done;
    asio::post(pipe, [this, &done, &progress] {
      clock.cancel();
      progress.step("the last interval: rolling up and handing it to every sink");
      dispatch(engine.drain(now_ms()));
      if (committer) {
        progress.step("the snapshot at shutdown");
        Status s = engine.snapshot_at(committer->number() + 1, now_ms());
        if (!s) log::warn("snapshot at shutdown failed: " + s.error().to_string());
      }
      done.set_value();
    });
    done.get_future().wait();
  }
};

Pipeline::Pipeline(PipelineOptions options, Engine& engine, MemoryStore& store,
                   std::vector<Sink*> sinks, asio::thread_pool& reads, ServerStatus& status)
    : impl_(std::make_unique<Impl>(std::move(options), engine, store, std::move(sinks), reads,
                                   status)) {}

Pipeline::~Pipeline() {
  drain();
  impl_->thread.join();
}

Status Pipeline::start() {
  Impl& p = *impl_;
  if (p.started) return Ok{};
  const EngineOptions& eo = p.engine.options();
  if (!eo.state_dir.empty()) {  // the WAL's group commit
    p.committer = std::make_unique<WalCommitter>(eo.state_dir, p.engine.take_wal(), eo.fsync);
    if (Status s = p.committer->start(); !s) {
      p.committer.reset();
      return s;
    }
  }
  p.started = true;
  asio::post(p.pipe, [&p] { p.schedule_rollup(); });
  return Ok{};
}

void Pipeline::ingest(std::string_view body, std::function<void(IngestOutcome)> answer) {
  impl_->ingest(body, std::move(answer));
}

void Pipeline::post(std::function<void()> task) { asio::post(impl_->pipe, std::move(task)); }

void Pipeline::drain() { impl_->drain(); }

}  // namespace statherd::server
