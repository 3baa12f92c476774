#include "server/http_server.h"

#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <csignal>
#include <optional>

#include "common/log.h"
#include "server/connection_limits.h"
#include "server/http_session.h"

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
  std::atomic<uint64_t> evicted{0}, refused{0};
  uint32_t max_connections = 0;
  AcceptBackoff accept_backoff;
  RateLimitedLine accept_log, over_cap_log, evict_log;
  bool drained = false;
  bool stop_signals_taken = false;
  double last_rollup_ms = 0;

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
        SessionContext ctx{options, routes, reads, sessions, queued_reads, idle, slow};
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
      const int64_t now = now_ms();
      if (options.before_flush) options.before_flush(now);
      auto started = std::chrono::steady_clock::now();
      dispatch(engine.flush(now));
      last_rollup_ms = std::chrono::duration<double, std::milli>(
                           std::chrono::steady_clock::now() - started).count();
      schedule_flush();
    });
  }

  // SIGTERM/SIGINT: drain once; from then on a second one exits at once (exit_now), also
  // while main waits for the sinks to flush. SIGHUP: reload, then wait for the next signal.
  void wait_signal() {
    signals.async_wait([this](beast::error_code ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        if (options.on_reload) options.on_reload();
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
    dispatch(engine.drain(now_ms()));
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
  s.do_accept();
  s.schedule_flush();
  s.ioc.run();
  s.reads.join();  // the drained interval reaches the store before run() returns
}

bool HttpServer::draining() const { return impl_->drained; }

double HttpServer::last_rollup_ms() const { return impl_->last_rollup_ms; }

uint32_t HttpServer::max_connections() const { return impl_->max_connections; }

ConnectionCounts HttpServer::connections() const {
  return {impl_->sessions.load(), impl_->evicted.load(), impl_->refused.load()};
}

void HttpServer::shutdown() {
  asio::post(impl_->ioc, [this] { impl_->drain_and_stop(); });
}

}  // namespace statherd::server
