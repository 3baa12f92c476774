// One connection of statherd-server's HTTP front (Boost.Beast): do_read -> on_header ->
// (read the body) -> on_read -> do_write -> do_read ... Deadlines and size limits on every
// step; read routes (ApiRoutes::prepare_read) are answered by the read thread. Between two
// requests a session is idle (ctx.idle): at the connection cap the server evicts the
// longest-idle session to admit a new client (HttpSession::evict). With none idle, the oldest
// "slow" one goes: a request whose header is not complete yet, or an unauthenticated request's
// body (slowloris). An authenticated ingest body, a request being answered and an answer being
// written are never evicted.
#pragma once

#include <utility>  // before Boost.Asio: its awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "server/api_routes.h"
#include "server/connection_limits.h"
#include "server/http_server.h"

namespace statherd::server {

class HttpSession;

// What a session needs from the server, shared by every connection (io thread only, except
// the atomics).
// Pipelined ingest: the body, and the callback that answers (from any thread).
using IngestHandler =
    std::function<void(std::string_view body, std::function<void(IngestOutcome)> answer)>;

struct SessionContext {
  const HttpServerOptions& options;
  ApiRoutes& routes;
  boost::asio::thread_pool& reads;         // the read thread
  std::atomic<uint32_t>& sessions;         // open connections
  std::atomic<uint32_t>& queued_reads;
  IdleConnections<HttpSession*>& idle;     // sessions waiting for a request
  IdleConnections<HttpSession*>& slow;     // in a header, or an unauthenticated body
  const IngestHandler* ingest = nullptr;   // unset: ApiRoutes::handle answers ingest too
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(boost::asio::ip::tcp::socket socket, SessionContext ctx);
  ~HttpSession();

  void start() { do_read(); }
  // Closes this idle or slow session (already taken out of its list) to make room.
  void evict();
  // Since when this session has been slow (in a header or an unauthenticated body).
  std::chrono::steady_clock::time_point slow_since() const { return slow_since_; }

 private:
  void do_read();
  void on_first_bytes(boost::beast::error_code ec, size_t n);
  void read_header();
  void on_header(boost::beast::error_code ec, size_t);
  void on_read(boost::beast::error_code ec, size_t);
  void run_on_read_thread(std::function<ApiResponse()> work);
  void ingest_async(std::string_view body);
  bool ingest_route() const;
  uint64_t route_body_limit() const;
  void fail_read(boost::beast::error_code ec);
  void do_write(ApiResponse api, bool may_keep_alive);
  void close();
  void linger_close();
  void discard_until_eof();
  enum class Evictable { No, Idle, Slow };
  void set_evictable(Evictable e);

  static constexpr size_t kMaxDiscardBytes = 1 << 20;
  std::array<char, 4096> discard_{};
  size_t discarded_ = 0;
  uint64_t body_limit_ = 0;
  Evictable evictable_ = Evictable::No;  // in ctx_.idle / ctx_.slow
  std::chrono::steady_clock::time_point slow_since_{};

  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  SessionContext ctx_;
};

}  // namespace statherd::server
