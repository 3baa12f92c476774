#include "server/http_server.h"

#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <csignal>
#include <future>
#include <optional>

#include "common/log.h"
#include "server/connection_limits.h"
#include "server/http_session.h"
#include "server/wal_committer.h"

namespace statherd::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// After the first SIGTERM/SIGINT the sinks get their stop_timeout to deliver what they hold;
// a second signal ends the process at once (what was acknowledged is in the WAL anyway).
void exit_now(int) {
  static const char kMessage[] =
      "statherd-server: second signal: exiting now without waiting for the sinks\n";
  ssize_t ignored = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
  (void)ignored;
  ::_exit(1);
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  Engine& engine;
  MemoryStore& store;
  std::vector<Sink*> sinks;
  ApiRoutes& routes;
  std::function<int64_t()> now_ms;
  // Declared before ioc: sessions still queued in it when it is destroyed leave this set and
  // count themselves out.
  IdleConnections<HttpSession*> idle, slow;
  std::atomic<uint32_t> sessions{0}, queued_reads{0};
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  asio::steady_timer flush_timer{ioc};
  asio::steady_timer accept_timer{ioc};
  asio::signal_set signals{ioc};
  // Read requests and the memory store's updates, in the order posted (one thread). Declared
  // after ioc: destroyed first, while the sessions its pending work holds can still close.
  asio::thread_pool reads{1};
  // The pipeline: applying logged batches, the rollup, the sinks, reloads, snapshots, in the
  // order posted (a strand on one thread), so ingest (io thread) never waits for any of them.
  asio::thread_pool pipeline{1};
  asio::strand<asio::thread_pool::executor_type> pipe{pipeline.get_executor()};
  std::unique_ptr<WalCommitter> committer;  // with a state_dir: group commit of the WAL
  IngestHandler ingest_handler;
  std::atomic<uint64_t> backlog{0};         // batches acknowledged, not applied yet
  bool snapshot_pending = false;            // pipeline thread only
  std::atomic<uint64_t> evicted{0}, refused{0};
  uint32_t max_connections = 0;
  AcceptBackoff accept_backoff;
  RateLimitedLine accept_log, over_cap_log, evict_log, backlog_log;
  std::atomic<bool> drained{false};
  bool stop_signals_taken = false;
  std::atomic<double> last_rollup_ms{0};

  Impl(HttpServerOptions o, Engine& e, MemoryStore& s, std::vector<Sink*> k, ApiRoutes& r,
       std::function<int64_t()> n)
      : options(std::move(o)), engine(e), store(s), sinks(std::move(k)), routes(r),
        now_ms(std::move(n)) {}

  // The store belongs to the read thread: its updates queue there behind running reads. The
  // sinks get an interval first, so a path visible in the store was also handed to them.
  void dispatch(const std::vector<IntervalOutput>& outputs) {
    for (const IntervalOutput& out : outputs) {
      for (Sink* sink : sinks) sink->emit(out);
      asio::post(reads, [this, copy = std::make_shared<const IntervalOutput>(out)] {
        store.emit(*copy);
      });
    }
  }

  void do_accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) return accept_failed(ec);
      accept_backoff.on_success();
      if (sessions.load() < max_connections || evict_longest_idle()) {
        SessionContext ctx{options, routes, reads, sessions, queued_reads, idle, slow,
                           &ingest_handler};
        std::make_shared<HttpSession>(std::move(s), ctx)->start();
      } else {
        refuse(std::move(s));
      }
      do_accept();
    });
  }

  // At the cap: the connection idle longest (no request started) makes room for the new one,
  // so sockets that never send a request cannot lock real clients out.
  // With none idle: the oldest request whose header (or unauthenticated body) has been coming
  // in for kSlowGrace at least: slowloris. A real client's header takes milliseconds, so one
  // that is merely being read is not taken.
  static constexpr std::chrono::milliseconds kSlowGrace{1000};
  std::optional<HttpSession*> take_slow() {
    auto oldest = slow.longest_idle();
    if (!oldest || std::chrono::steady_clock::now() - (*oldest)->slow_since() < kSlowGrace)
      return std::nullopt;
    return slow.take_longest_idle();
  }

  bool evict_longest_idle() {
    auto victim = idle.take_longest_idle();
    if (!victim) victim = take_slow();
    if (!victim) return false;
    (*victim)->evict();
    ++evicted;
    if (auto line = evict_log.take("connection limit of " + std::to_string(max_connections) +
                                       " reached: evicting the longest-idle connection to "
                                       "admit a new one",
                                   std::chrono::steady_clock::now())) {
      log::warn(*line + "\nhint: many idle connections (a client leaking them, or an attack); "
                        "raise limits.max_connections if these are real clients");
    }
    return true;
  }

  // Every connection is in a request or an answer: the new one is closed at once; the
  // descriptor is free again and the client may retry.
  void refuse(tcp::socket socket) {
    ++refused;
    beast::error_code ignored;
    socket.close(ignored);
    if (auto line = over_cap_log.take("connection limit of " + std::to_string(max_connections) +
                                          " reached with no idle connection: closing new "
                                          "connections",
                                      std::chrono::steady_clock::now())) {
      log::warn(*line + "\nhint: raise limits.max_connections (and LimitNOFILE=) if these are "
                        "real clients");
    }
  }

  // Out of descriptors: wait (backing off) instead of retrying at once, log once in a while.
  void accept_failed(beast::error_code ec) {
    auto wait = accept_backoff.on_error(ec.value());
    if (auto line = accept_log.take("accept failed: " + ec.message() + "; retrying in " +
                                        std::to_string(wait.count()) + " ms",
                                    std::chrono::steady_clock::now())) {
      log::warn(*line);
    }
    accept_timer.expires_after(wait);
    accept_timer.async_wait([this](beast::error_code timer_ec) {
      if (!timer_ec) do_accept();
    });
  }

  // Fires at each wall-clock interval boundary + grace.
  void schedule_flush() {
    int64_t interval = engine.options().interval.count();
    int64_t grace = engine.options().grace.count();
    int64_t now = now_ms();
    int64_t base = now - grace;
    int64_t boundary = (base / interval) * interval - (base < 0 && base % interval ? interval : 0);
    int64_t next = boundary + interval + grace;
    flush_timer.expires_after(std::chrono::milliseconds(std::max<int64_t>(1, next - now)));
    flush_timer.async_wait([this](beast::error_code ec) {
      if (ec) return;
      asio::post(pipe, [this, now = now_ms()] { rollup(now); });
      schedule_flush();
    });
  }

  // Pipeline thread: the rollup of every interval that ended, to the sinks and the store.
  void rollup(int64_t now) {
    if (options.before_flush) options.before_flush(now);
    auto started = std::chrono::steady_clock::now();
    dispatch(engine.flush(now));
    last_rollup_ms = std::chrono::duration<double, std::milli>(
                         std::chrono::steady_clock::now() - started).count();
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

  // io thread: decode and log the batch; the answer goes out once it is in the WAL, and its
  // apply is queued on the pipeline.
  static constexpr uint64_t kMaxBacklog = 4096;
  void ingest(std::string_view body, std::function<void(IngestOutcome)> answer) {
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

  // SIGTERM/SIGINT: drain once; from then on a second one exits at once (exit_now), also
  // while main waits for the sinks to flush. SIGHUP: reload, then wait for the next signal.
  void wait_signal() {
    signals.async_wait([this](beast::error_code ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {  // between rollups, on the pipeline thread (the sinks' own)
        if (options.on_reload) asio::post(pipe, options.on_reload);
        else log::info("SIGHUP: nothing to reload");
        return wait_signal();
      }
      take_over_stop_signals();  // before the log line: a second signal after it must count
      log::info(std::string(signal == SIGTERM ? "SIGTERM" : "SIGINT") +
                ": draining the last interval to every sink (send it again to exit at once)");
      drain_and_stop();
    });
  }

  // asio gives the signals back their default action when its set is cleared; exit_now then
  // makes a second SIGTERM/SIGINT end the process at once, saying so.
  void take_over_stop_signals() {
    if (!options.handle_signals || stop_signals_taken) return;
    stop_signals_taken = true;
    beast::error_code ignored;
    signals.clear(ignored);
    std::signal(SIGTERM, exit_now);
    std::signal(SIGINT, exit_now);
    std::signal(SIGHUP, SIG_IGN);  // no reload while stopping (and not the default: terminate)
  }

  void drain_and_stop() {
    if (drained) return;
    drained = true;
    beast::error_code ignored;
    acceptor.close(ignored);
    flush_timer.cancel();
    accept_timer.cancel();
    take_over_stop_signals();
    // What the committer holds is written and its batches queued; then the last interval.
    if (committer) committer->stop();
    std::promise<void> done;
    asio::post(pipe, [this, &done] {
      dispatch(engine.drain(now_ms()));
      if (committer) {
        Status s = engine.snapshot_at(committer->number() + 1, now_ms());
        if (!s) log::warn("snapshot at shutdown failed: " + s.error().to_string());
      }
      done.set_value();
    });
    done.get_future().wait();
    ioc.stop();
  }
};

HttpServer::HttpServer(HttpServerOptions options, Engine& engine, MemoryStore& store,
                       std::vector<Sink*> sinks, ApiRoutes& routes,
                       std::function<int64_t()> now_ms)
    : impl_(std::make_unique<Impl>(std::move(options), engine, store, std::move(sinks), routes,
                                   std::move(now_ms))) {}

HttpServer::~HttpServer() = default;

Status HttpServer::listen() {
  Impl& s = *impl_;
  beast::error_code ec;
  tcp::resolver resolver(s.ioc);
  auto results = resolver.resolve(s.options.host, std::to_string(s.options.port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return make_error("cannot resolve listen address " + s.options.host + ": " + ec.message(),
                      "use an IP address such as 127.0.0.1");
  }
  tcp::endpoint endpoint = results.begin()->endpoint();
  std::string where = s.options.host + ":" + std::to_string(s.options.port);
  if (s.acceptor.open(endpoint.protocol(), ec); ec) {
    return make_error("cannot open a socket for " + where + ": " + ec.message());
  }
  s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (s.acceptor.bind(endpoint, ec); ec) {
    return make_error("cannot listen on " + where + ": " + ec.message(),
                      "is another statherd-server running? choose another port with --listen");
  }
  if (s.acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return make_error("cannot listen on " + where + ": " + ec.message());
  }
  std::string why;
  s.max_connections = fit_connection_cap(s.options.max_connections, why);
  if (!why.empty()) log::warn(why);
  if (!s.engine.options().state_dir.empty() && !s.committer) {  // the WAL's group commit
    s.committer = std::make_unique<WalCommitter>(s.engine.options().state_dir, s.engine.take_wal(),
                                                 s.engine.options().fsync);
    if (Status started = s.committer->start(); !started) {
      s.committer.reset();
      return started;
    }
  }
  return Ok{};
}

uint16_t HttpServer::port() const {
  beast::error_code ec;
  auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

void HttpServer::run() {
  Impl& s = *impl_;
  if (s.options.handle_signals) {
    s.signals.add(SIGTERM);
    s.signals.add(SIGINT);
    s.signals.add(SIGHUP);
    s.wait_signal();
  }
  s.ingest_handler = [&s](std::string_view body, std::function<void(IngestOutcome)> answer) {
    s.ingest(body, std::move(answer));
  };
  s.do_accept();
  s.schedule_flush();
  s.ioc.run();
  s.pipeline.join();
  s.reads.join();  // the drained interval reaches the store before run() returns
}

bool HttpServer::draining() const { return impl_->drained.load(); }

double HttpServer::last_rollup_ms() const { return impl_->last_rollup_ms; }

uint32_t HttpServer::max_connections() const { return impl_->max_connections; }

ConnectionCounts HttpServer::connections() const {
  return {impl_->sessions.load(), impl_->evicted.load(), impl_->refused.load()};
}

void HttpServer::shutdown() {
  asio::post(impl_->ioc, [this] { impl_->drain_and_stop(); });
}

}  // namespace statherd::server
