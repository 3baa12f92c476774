#include "server/stop_progress.h"

#include <string>
#include <system_error>

#include "common/log.h"
#include "common/thread_name.h"

namespace statherd::server {

namespace {

std::string seconds_text(StopProgress::Clock::duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100) + " s";
}

}  // namespace

StopProgress::StopProgress(std::chrono::milliseconds every, Report report)
    : every_(every), report_(report ? std::move(report) : Report([](const std::string& line) {
        log::warn(line);
      })) {}

StopProgress::~StopProgress() { end(); }

StopProgress& StopProgress::process() {
  static StopProgress* const p = new StopProgress();  // no destructor at exit: the pool may log
  return *p;
}

void StopProgress::begin() {
  std::lock_guard lock(mutex_);
  if (begun_) return;
  begun_ = true;
  began_ = step_began_ = Clock::now();
  try {
    watcher_ = std::thread([this] {
      name_this_thread("stop-progress");
      watch();
    });
  } catch (const std::system_error& e) {  // a diagnostic: the stop goes on without it
    log::warn(std::string("stop progress not reported: ") + e.what());
  }
}

void StopProgress::step(const char* what) {
  std::lock_guard lock(mutex_);
  step_ = what;
  step_began_ = Clock::now();
}

void StopProgress::end() {
  {
    std::lock_guard lock(mutex_);
    if (!begun_ || ended_) return;
    ended_ = true;
  }
  wake_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  const auto took = Clock::now() - began_;
  if (took >= every_) report_("stop took " + seconds_text(took));
}

void StopProgress::watch() {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (wake_.wait_for(lock, every_, [this] { return ended_; })) return;
    const auto now = Clock::now();
    const std::string line = "still stopping after " + seconds_text(now - began_) + ": " +
                             step_ + " (for " + seconds_text(now - step_began_) + ")";
    lock.unlock();
    report_(line);
    lock.lock();
  }
}

}  // namespace statherd::server
