#include "server/daemon.h"

#include <unistd.h>

#include <boost/asio.hpp>

#include <csignal>
#include <string>
#include <thread>

#include "common/log.h"
#include "common/thread_name.h"
#include "server/stop_progress.h"

namespace statherd::server {

namespace asio = boost::asio;

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

struct Daemon::Impl {
  DaemonOptions options;
  Pipeline& pipeline;
  HttpServer& server;
  asio::thread_pool& reads;
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  asio::signal_set signals{ioc};
  bool stop_signals_taken = false;
  bool stopped = false;

  Impl(DaemonOptions o, Pipeline& p, HttpServer& s, asio::thread_pool& r)
      : options(std::move(o)), pipeline(p), server(s), reads(r) {}

  void wait_signal() {
    signals.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        if (options.reload) pipeline.post(options.reload);
        else log::info("SIGHUP: nothing to reload");
        return wait_signal();
      }
      take_over_stop_signals();  // before the log line: a second signal after it must count
      log::info(std::string(signal == SIGTERM ? "SIGTERM" : "SIGINT") +
                ": draining the last interval to every sink (send it again to exit at once)");
      stop();
    });
  }

  // asio gives the signals back their default action when its set is cleared; exit_now then
  // makes a second SIGTERM/SIGINT end the process at once, saying so.
  void take_over_stop_signals() {
    if (!options.handle_signals || stop_signals_taken) return;
    stop_signals_taken = true;
    boost::system::error_code ignored;
    signals.clear(ignored);
    std::signal(SIGTERM, exit_now);
    std::signal(SIGINT, exit_now);
    std::signal(SIGHUP, SIG_IGN);  // no reload while stopping (and not the default: terminate)
  }

  // The stop order: no new connections, the pipeline drained (its last interval reaches the
  // read thread's queue), HTTP stopped; run() then joins HTTP and the read thread.
  void stop() {
    if (stopped) return;
    stopped = true;
    take_over_stop_signals();
    StopProgress& progress = StopProgress::process();
    if (options.handle_signals) progress.begin();  // the daemon's: main ends it
    progress.step("closing the listener");
    server.stop_accepting();
    pipeline.drain();
    progress.step("stopping HTTP");
    server.stop();
    work.reset();
  }
};

Daemon::Daemon(DaemonOptions options, Pipeline& pipeline, HttpServer& server,
               asio::thread_pool& reads)
    : impl_(std::make_unique<Impl>(std::move(options), pipeline, server, reads)) {}

Daemon::~Daemon() = default;

void Daemon::run() {
  Impl& d = *impl_;
  if (d.options.handle_signals) {
    d.signals.add(SIGTERM);
    d.signals.add(SIGINT);
    d.signals.add(SIGHUP);
    d.wait_signal();
  }
  std::thread http([&d] {
    name_this_thread("http");
    d.server.run();
  });
  d.ioc.run();
  StopProgress::process().step("waiting for the HTTP thread");
  http.join();
  StopProgress::process().step("waiting for the read thread (queries, the last interval's store)");
  d.reads.join();  // the drained interval reaches the store before run() returns
}

void Daemon::shutdown() {
  asio::post(impl_->ioc, [this] { impl_->stop(); });
}

}  // namespace statherd::server
