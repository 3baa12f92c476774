#pragma once

// A stop that takes long says where it is (CI: a SIGTERM that a harness ended with SIGKILL 10 s
// later had logged nothing after "draining"). Daemon::stop, the pipeline's drain and main name
// their steps; once begin() ran, a watcher logs the current step every `every` until end().
// Steps are string literals (only the pointer is kept).

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace statherd::server {

class StopProgress {
 public:
  using Clock = std::chrono::steady_clock;

  using Report = std::function<void(const std::string&)>;  // default: log::warn

  explicit StopProgress(std::chrono::milliseconds every = std::chrono::seconds(2),
                        Report report = {});
  ~StopProgress();  // end()
  StopProgress(const StopProgress&) = delete;
  StopProgress& operator=(const StopProgress&) = delete;

  static StopProgress& process();  // the daemon's; never destroyed

  void begin();                 // the stop started: the watcher runs (once)
  void step(const char* what);  // a literal
  void end();                   // joins the watcher; logs the whole stop if it took long

 private:
  void watch();

  const std::chrono::milliseconds every_;
  const Report report_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::thread watcher_;
  const char* step_ = "starting";
  Clock::time_point began_{};
  Clock::time_point step_began_{};
  bool begun_ = false;
  bool ended_ = false;
};

}  // namespace statherd::server
