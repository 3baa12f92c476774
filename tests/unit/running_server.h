// The server's three parts as server/main.cpp builds them, for tests: the read thread, a
// Pipeline over the engine, an HttpServer on a free loopback port feeding it, and a Daemon
// (no signals) serving on a thread of its own until stop().
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/thread_pool.hpp>

#include <memory>
#include <thread>
#include <vector>

#include "server/daemon.h"
#include "server/http_server.h"
#include "server/pipeline.h"

namespace statherd::server::testing {

class RunningServer {
 public:
  RunningServer(HttpServerOptions http, PipelineOptions pipeline_options, Engine& engine,
                MemoryStore& store, std::vector<Sink*> sinks, ApiRoutes& routes)
      : pipeline(std::move(pipeline_options), engine, store, std::move(sinks), reads, status),
        server(std::move(http), pipeline, routes, reads, status),
        daemon(DaemonOptions{false, nullptr}, pipeline, server, reads) {
    EXPECT_TRUE(server.listen().ok());
    EXPECT_TRUE(pipeline.start().ok());
    thread = std::thread([this] { daemon.run(); });
  }
  ~RunningServer() { stop(); }
  uint16_t port() const { return server.port(); }
  // Drains the pipeline to every sink and the store, stops HTTP; returns when all is done.
  void stop() {
    if (!thread.joinable()) return;
    daemon.shutdown();
    thread.join();
  }

  ServerStatus status;
  boost::asio::thread_pool reads{1};
  Pipeline pipeline;
  HttpServer server;
  Daemon daemon;
  std::thread thread;
};

}  // namespace statherd::server::testing
