#include "server/http_server.h"

#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <optional>

#include "common/log.h"
#include "server/connection_limits.h"
#include "server/http_session.h"

namespace statherd::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpServer::Impl {
  HttpServerOptions options;
  IngestPort& ingest_port;
  ApiRoutes& routes;
  asio::thread_pool& reads;  // the read thread: read requests (and the store's updates)
  ServerStatus& status;
  // Declared before ioc: sessions still queued in it when it is destroyed leave this set and
  // count themselves out.
  IdleConnections<HttpSession*> idle, slow;
  std::atomic<uint32_t>& sessions = status.connections_open;
  std::atomic<uint32_t> queued_reads{0};
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  asio::steady_timer accept_timer{ioc};
  IngestHandler ingest_handler;
  std::atomic<uint64_t>& evicted = status.connections_evicted;
  std::atomic<uint64_t>& refused = status.connections_refused;
  uint32_t max_connections = 0;
  AcceptBackoff accept_backoff;
  RateLimitedLine accept_log, over_cap_log, evict_log;

  Impl(HttpServerOptions o, IngestPort& i, ApiRoutes& r, asio::thread_pool& rd, ServerStatus& st)
      : options(std::move(o)), ingest_port(i), routes(r), reads(rd), status(st),
        ingest_handler([this](std::string_view body, std::function<void(IngestOutcome)> answer) {
          ingest_port.ingest(body, std::move(answer));
        }) {}

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

  void stop_accepting() {
    status.draining = true;
    beast::error_code ignored;
    acceptor.close(ignored);
    accept_timer.cancel();
  }
};

HttpServer::HttpServer(HttpServerOptions options, IngestPort& ingest, ApiRoutes& routes,
                       asio::thread_pool& reads, ServerStatus& status)
    : impl_(std::make_unique<Impl>(std::move(options), ingest, routes, reads, status)) {}

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
  s.status.max_connections = s.max_connections;
  return Ok{};
}

uint16_t HttpServer::port() const {
  beast::error_code ec;
  auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

void HttpServer::run() {
  Impl& s = *impl_;
  s.do_accept();
  s.ioc.run();
}

void HttpServer::stop_accepting() {
  asio::post(impl_->ioc, [this] { impl_->stop_accepting(); });
}

void HttpServer::stop() {
  asio::post(impl_->ioc, [this] {
    impl_->stop_accepting();
    impl_->ioc.stop();
  });
}

}  // namespace statherd::server
