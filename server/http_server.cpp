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

// What a session needs from the server, shared by every connection.
struct SessionContext {
  const HttpServerOptions& options;
  ApiRoutes& routes;
  asio::thread_pool& reads;           // the read thread
  std::atomic<uint32_t>& sessions;    // open connections
  std::atomic<uint32_t>& queued_reads;
};

// One connection: do_read -> on_header -> (read body) -> on_read -> do_write -> do_read ...
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, SessionContext ctx) : stream_(std::move(socket)), ctx_(ctx) {
    ++ctx_.sessions;
  }
  ~Session() { --ctx_.sessions; }

  void start() { do_read(); }

 private:
  void do_read() {
    parser_.emplace();
    parser_->header_limit(ctx_.options.max_header_bytes);
    parser_->body_limit(ctx_.options.max_body_bytes);
    stream_.expires_after(ctx_.options.idle_timeout);  // a connection waiting for a request
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, size_t) {
    if (ec) return fail_read(ec);
    const auto& req = parser_->get();
    // Route, method and token are checked before a body is read, so an unauthenticated client
    // cannot make the server read 64 MiB.
    ApiResponse head = ctx_.routes.check_head(
        std::string_view(req.method_string().data(), req.method_string().size()),
        std::string_view(req.target().data(), req.target().size()),
        std::string_view(req[http::field::authorization].data(),
                         req[http::field::authorization].size()));
    if (head.status != 0) return do_write(std::move(head), parser_->is_done());
    // Only ingest (authenticated above) may send max_body_bytes; every other route gets the
    // small read limit, refused from Content-Length before any of the body is read.
    body_limit_ = route_body_limit();
    if (auto length = parser_->content_length(); length && *length > body_limit_) {
      return fail_read(http::error::body_limit);
    }
    parser_->body_limit(body_limit_);
    stream_.expires_after(ctx_.options.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec) return fail_read(ec);
    const auto& req = parser_->get();
    ApiRequest request;
    request.method = std::string_view(req.method_string().data(), req.method_string().size());
    request.target = std::string_view(req.target().data(), req.target().size());
    auto auth = req[http::field::authorization];
    request.authorization = std::string_view(auth.data(), auth.size());
    request.body = req.body();
    if (auto work = ctx_.routes.prepare_read(request)) return run_on_read_thread(std::move(work));
    do_write(ctx_.routes.handle(request), true);
  }

  // The answer is written back on this session's executor (the io thread).
  void run_on_read_thread(std::function<ApiResponse()> work) {
    if (ctx_.queued_reads.load() >= ctx_.options.max_queued_reads) {
      ApiResponse busy = json_error(503, "too many read requests waiting",
                                    "retry in a moment; reads are served one at a time");
      busy.headers.emplace_back("Retry-After", "1");
      return do_write(std::move(busy), true);
    }
    ++ctx_.queued_reads;
    asio::post(ctx_.reads, [self = shared_from_this(), work = std::move(work)] {
      ApiResponse answer;
      try {
        answer = work();
      } catch (const std::exception& e) {
        answer = json_error(500, std::string("read request failed: ") + e.what());
      }
      --self->ctx_.queued_reads;
      asio::post(self->stream_.get_executor(), [self, answer = std::move(answer)]() mutable {
        self->do_write(std::move(answer), true);
      });
    });
  }

  // Only ingest (authenticated) may send max_body_bytes; every other route max_read_body_bytes.
  bool ingest_route() const {
    const auto& req = parser_->get();
    return ApiRoutes::needs_token(
        ApiRoutes::path_of(std::string_view(req.target().data(), req.target().size())));
  }
  uint64_t route_body_limit() const {
    return ingest_route() ? ctx_.options.max_body_bytes : ctx_.options.max_read_body_bytes;
  }

  void fail_read(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      // Beast checks Content-Length against the parser's limit while it reads the header,
      // before on_header has chosen the route's limit: name the route's limit, not body_limit_.
      const bool ingest = ingest_route();
      return do_write(json_error(413, "request body over " + std::to_string(route_body_limit()) +
                                          " bytes",
                                 ingest ? "raise limits.max_body_bytes or send smaller batches"
                                        : "send fewer targets, or raise "
                                          "limits.max_read_body_bytes"),
                      false);
    }
    if (ec == http::error::header_limit) {
      return do_write(json_error(431, "request header too large"), false);
    }
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted) {
      return close();
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      return do_write(json_error(400, "bad HTTP request: " + ec.message()), false);
    }
    close();
  }

  void do_write(ApiResponse api, bool may_keep_alive) {
    const auto& req = parser_->get();
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(api.status), req.version());
    res->set(http::field::server, "statherd");
    res->set(http::field::content_type, api.content_type);
    if (!api.allow.empty()) res->set(http::field::allow, api.allow);
    for (const auto& [name, value] : api.headers) res->set(name, value);
    if (api.status == 401) res->set(http::field::www_authenticate, "Bearer");
    res->keep_alive(may_keep_alive && req.keep_alive());
    res->body() = std::move(api.body);
    res->prepare_payload();
    stream_.expires_after(ctx_.options.write_timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec) return self->close();
                        if (!res->keep_alive()) return self->linger_close();
                        self->do_read();
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  // After answering a request whose body was not read (401, 413, ...): send FIN, then read and
  // discard what the client is still sending (bounded in bytes and time), so closing with unread
  // data does not reset the connection before the client has read the answer.
  void linger_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    discard_until_eof();
  }

  void discard_until_eof() {
    stream_.expires_after(std::chrono::seconds(2));
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->discarded_ += n;
                              if (ec || self->discarded_ > kMaxDiscardBytes) {
                                return self->stream_.close();
                              }
                              self->discard_until_eof();
                            });
  }

  static constexpr size_t kMaxDiscardBytes = 1 << 20;
  std::array<char, 4096> discard_{};
  size_t discarded_ = 0;
  uint64_t body_limit_ = 0;

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  SessionContext ctx_;
};

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  Engine& engine;
  MemoryStore& store;
  std::vector<Sink*> sinks;
  ApiRoutes& routes;
  std::function<int64_t()> now_ms;
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  asio::steady_timer flush_timer{ioc};
  asio::steady_timer accept_timer{ioc};
  asio::signal_set signals{ioc};
  // Read requests and the memory store's updates, in the order posted (one thread). Declared
  // after ioc: destroyed first, while the sessions its pending work holds can still close.
  asio::thread_pool reads{1};
  std::atomic<uint32_t> sessions{0}, queued_reads{0};
  uint32_t max_connections = 0;
  AcceptBackoff accept_backoff;
  RateLimitedLine accept_log, over_cap_log;
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
      if (sessions.load() >= max_connections) {
        // Closed at once: the descriptor is free again and the client may retry; the
        // connections that hold the cap time out after idle_timeout.
        if (auto line = over_cap_log.take("connection limit of " +
                                              std::to_string(max_connections) +
                                              " reached: closing new connections",
                                          std::chrono::steady_clock::now())) {
          log::warn(*line + "\nhint: raise limits.max_connections (and LimitNOFILE=) if "
                            "these are real clients");
        }
      } else {
        SessionContext ctx{options, routes, reads, sessions, queued_reads};
        std::make_shared<Session>(std::move(s), ctx)->start();
      }
      do_accept();
    });
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

void HttpServer::shutdown() {
  asio::post(impl_->ioc, [this] { impl_->drain_and_stop(); });
}

}  // namespace statherd::server
