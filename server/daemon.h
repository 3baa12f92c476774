// The daemon around the pipeline and the HTTP transport (issue #10 item 4): signals, reloads
// and the stop order, on the thread that calls run() (main's).
//   - SIGHUP: `reload` runs on the pipeline thread, between rollups;
//   - SIGTERM/SIGINT (or shutdown()): stop accepting (GET /readyz says draining), drain the
//     pipeline (what the WAL committer holds, then the last interval to every sink and the
//     store, a snapshot), stop HTTP, join the read thread. A second SIGTERM/SIGINT meanwhile
//     (or while main then waits for the sinks to flush) exits at once.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <memory>

#include "server/http_server.h"
#include "server/pipeline.h"

namespace statherd::server {

struct DaemonOptions {
  bool handle_signals = true;    // false: only shutdown() stops it (tests)
  std::function<void()> reload;  // SIGHUP, on the pipeline thread; empty: logged and ignored
};

class Daemon {
 public:
  // Both started: pipeline.start() and server.listen() succeeded.
  Daemon(DaemonOptions options, Pipeline& pipeline, HttpServer& server,
         boost::asio::thread_pool& reads);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Serves (HTTP on a thread of its own) until SIGTERM/SIGINT or shutdown(); returns once the
  // pipeline is drained, HTTP stopped and the read thread's work done.
  void run();
  void shutdown();  // thread-safe

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace statherd::server
