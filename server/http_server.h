// The HTTP front of statherd-server (Boost.Beast, one io_context thread). It accepts
// connections, enforces deadlines and size limits, hands requests to ApiRoutes, and runs the
// interval timer. Threads:
//   - io: HTTP, and ingest's first half (Engine::admit: decode, known duplicates);
//   - WAL committer (with a state_dir): group commit; a batch is answered once it is logged;
//   - pipeline: applying logged batches, the rollup (Engine::flush) to every sink and the
//     store, snapshots, SIGHUP reloads, in order; ingest never waits for it;
//   - read: read requests (ApiRoutes::is_read_path) and the memory store's updates.
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
#include "server/engine.h"
#include "server/memory_store.h"
#include "server/sinks/sink.h"

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
  bool handle_signals = false;                    // SIGTERM/SIGINT -> shutdown(), SIGHUP -> on_reload
  std::function<void()> on_reload;                // run on the pipeline thread for each SIGHUP
  std::function<void(int64_t now_ms)> before_flush;  // on the pipeline thread before each rollup
};

struct ConnectionCounts {
  uint32_t open = 0;     // connections now
  uint64_t evicted = 0;  // idle connections closed at the cap to admit a new one
  uint64_t refused = 0;  // new connections closed at the cap (none was idle)
};

class HttpServer {
 public:
  // `store` and every sink receive each IntervalOutput of Engine::flush / Engine::drain.
  HttpServer(HttpServerOptions options, Engine& engine, MemoryStore& store,
             std::vector<Sink*> sinks, ApiRoutes& routes, std::function<int64_t()> now_ms);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Status listen();        // bind and listen; after it, port() is the bound port
  uint16_t port() const;
  void run();             // serve on the calling thread until shutdown
  // Thread-safe: stop accepting, Engine::drain to the store and every sink, return from run().
  void shutdown();
  // Thread-safe: true once shutdown began (GET /readyz answers 503 then).
  bool draining() const;
  // Thread-safe: how long the last rollup (Engine::flush + handing it to every sink) took.
  double last_rollup_ms() const;
  // After listen(): the connection cap in force (options.max_connections, maybe lowered).
  uint32_t max_connections() const;
  // Thread-safe.
  ConnectionCounts connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace statherd::server
