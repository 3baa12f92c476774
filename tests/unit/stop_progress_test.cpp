#include "server/stop_progress.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

namespace statherd::server {
namespace {

using namespace std::chrono_literals;

struct Lines {
  std::mutex mutex;
  std::condition_variable added;
  std::vector<std::string> lines;

  StopProgress::Report report() {
    return [this](const std::string& line) {
      {
        std::lock_guard lock(mutex);
        lines.push_back(line);
      }
      added.notify_all();
    };
  }
  // Waits (at most 30 s: a wait, not a timing check) until a line contains `text`.
  bool wait_for(const std::string& text) {
    std::unique_lock lock(mutex);
    return added.wait_for(lock, 30s, [&] {
      for (const std::string& l : lines)
        if (l.find(text) != std::string::npos) return true;
      return false;
    });
  }
  std::vector<std::string> copy() {
    std::lock_guard lock(mutex);
    return lines;
  }
};

TEST(StopProgress, ALongStepIsNamedWhileItLasts) {
  Lines out;
  StopProgress progress(20ms, out.report());
  progress.begin();
  progress.step("the WAL committer syncing");
  ASSERT_TRUE(out.wait_for("the WAL committer syncing"));
  progress.step("the sinks delivering");
  ASSERT_TRUE(out.wait_for("the sinks delivering"));
  progress.end();
  const std::vector<std::string> lines = out.copy();
  EXPECT_NE(lines.front().find("still stopping after"), std::string::npos) << lines.front();
  EXPECT_NE(lines.back().find("stop took"), std::string::npos) << lines.back();
}

TEST(StopProgress, StepsWithoutBeginSayNothing) {
  Lines out;
  {
    StopProgress progress(1ms, out.report());
    progress.step("a drain outside a stop (a unit test's pipeline)");  // no watcher
    progress.end();  // never begun: nothing to join, nothing said
  }
  EXPECT_TRUE(out.copy().empty());
}

}  // namespace
}  // namespace statherd::server
