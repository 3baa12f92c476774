// The HTTP transport of statherd-server (Boost.Beast, one io_context thread): it accepts
// connections, enforces deadlines, size limits and the connection cap, and hands requests to
// ApiRoutes, batch bodies to the pipeline (IngestPort), read requests to the read thread. It
// knows nothing of the engine, the rollup or signals (server/pipeline.h, server/daemon.h).
// All Beast code lives in http_server.cpp and http_session.cpp (one connection).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "server/api_routes.h"
#include "server/pipeline.h"
#include "server/server_status.h"

namespace statherd::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8470;                           // 0: any free port (tests)
  uint64_t max_body_bytes = 64ull << 20;          // ingest; beyond: 413
  uint64_t max_read_body_bytes = 64 * 1024;       // every other route; beyond: 413, unread
  uint32_t max_connections = 1024;                // beyond: the longest-idle connection is
                                                  // closed to admit the new one, or if none
                                                  // is idle the new one is closed at once;
                                                  // lowered to fit RLIMIT_NOFILE at listen()
  uint32_t max_queued_reads = 64;                 // read requests waiting; beyond: 503
  uint32_t max_header_bytes = 16 * 1024;          // beyond: 431
  std::chrono::milliseconds read_timeout{30'000};   // per request (header + body)
  std::chrono::milliseconds idle_timeout{30'000};   // a connection without a request
  std::chrono::milliseconds write_timeout{30'000};
};

class HttpServer {
 public:
  // `reads`: the read thread, shared with the pipeline's store updates; it must outlive the
  // server and be joined before the server is destroyed (its work may hold connections).
  HttpServer(HttpServerOptions options, IngestPort& ingest, ApiRoutes& routes,
             boost::asio::thread_pool& reads, ServerStatus& status);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Status listen();        // bind and listen; after it, port() is the bound port
  uint16_t port() const;
  void run();             // serve on the calling thread until stop()
  // Thread-safe: close the listener; GET /readyz answers 503 from now on (draining).
  void stop_accepting();
  // Thread-safe: stop_accepting(), then close every connection and return from run().
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace statherd::server
