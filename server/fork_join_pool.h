// A fixed set of worker threads for fork-join work (the rollup, sharded by series): run(n, task)
// calls task(0..n-1) on the calling thread and the workers and returns when every call has
// returned. Which thread runs which index is not fixed, so a task must write only to its own
// slot of the result (the caller then combines the slots in index order: deterministic output).
// No detached threads: the destructor stops and joins them. With size() == 1 there is no thread
// at all and run() is a plain loop.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

namespace statherd::server {

// `threads:` as configured (0 = auto) -> the number of threads to use: auto is
// std::thread::hardware_concurrency() (1 when unknown), at most kMaxAutoThreads; an explicit
// number is taken as is up to kMaxThreads.
inline constexpr unsigned kMaxAutoThreads = 16;
inline constexpr unsigned kMaxThreads = 256;
unsigned resolve_threads(unsigned configured);

class ForkJoinPool {
 public:
  // threads in all, the caller included (>= 1); the workers are named "<name>-1", "<name>-2"...
  explicit ForkJoinPool(unsigned threads, std::string_view name = "worker");
  ~ForkJoinPool();
  ForkJoinPool(const ForkJoinPool&) = delete;
  ForkJoinPool& operator=(const ForkJoinPool&) = delete;

  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }
  // Not reentrant: one run() at a time (the engine calls it under its lock). The first
  // exception a task throws is rethrown here once every task has finished.
  void run(size_t tasks, const std::function<void(size_t)>& task);

 private:
  void work_loop();
  void take_tasks();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;   // bumped by run(): workers join that round
  bool stopping_ = false;
  unsigned busy_ = 0;         // workers still in the current round
  // The current round (set by run() under mu_ before the workers wake).
  const std::function<void(size_t)>* task_ = nullptr;
  size_t tasks_ = 0;
  size_t next_ = 0;           // next index to hand out (under mu_: rounds are coarse)
  std::exception_ptr error_;
};

}  // namespace statherd::server
