#include "server/fork_join_pool.h"

#include <algorithm>
#include <string>

#include "common/thread_name.h"

namespace statherd::server {

unsigned resolve_threads(unsigned configured) {
  if (configured > 0) return std::min(configured, kMaxThreads);
  unsigned hw = std::thread::hardware_concurrency();
  return std::clamp(hw, 1u, kMaxAutoThreads);
}

ForkJoinPool::ForkJoinPool(unsigned threads, std::string_view name) {
  threads = std::clamp(threads, 1u, kMaxThreads);
  workers_.reserve(threads - 1);
  for (unsigned i = 1; i < threads; ++i) {
    workers_.emplace_back([this, thread_name = std::string(name) + "-" + std::to_string(i)] {
      name_this_thread(thread_name);
      work_loop();
    });
  }
}

ForkJoinPool::~ForkJoinPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

// Hands out indexes one at a time until none is left. A round has a few dozen coarse tasks
// (shards of ~10k series), so taking the lock per task costs nothing measurable.
void ForkJoinPool::take_tasks() {
  for (;;) {
    size_t i;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (next_ >= tasks_) return;
      i = next_++;
    }
    try {
      (*task_)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
    }
  }
}

void ForkJoinPool::work_loop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    take_tasks();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--busy_ == 0) done_.notify_one();
    }
  }
}

void ForkJoinPool::run(size_t tasks, const std::function<void(size_t)>& task) {
  if (workers_.empty() || tasks <= 1) {
    for (size_t i = 0; i < tasks; ++i) task(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    task_ = &task;
    tasks_ = tasks;
    next_ = 0;
    error_ = nullptr;
    busy_ = static_cast<unsigned>(workers_.size());
    ++generation_;
  }
  wake_.notify_all();
  take_tasks();
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return busy_ == 0; });
    task_ = nullptr;
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace statherd::server
