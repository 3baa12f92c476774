// The server's pipeline (issue #10 item 4): the engine, the rollup clock and the sinks. It
// knows nothing of HTTP: the transport hands it batch bodies (IngestPort) and the daemon
// drains it. Threads:
//   - the caller's (the HTTP io thread): Engine::admit (decode, known duplicates);
//   - the WAL committer (with a state_dir): group commit; a batch is answered once logged;
//   - the pipeline thread: applying logged batches, the rollup at each interval boundary +
//     grace (its own timer), every sink, snapshots, posted tasks (SIGHUP reloads), in order:
//     ingest never waits for any of them;
//   - the read thread (shared with the transport's read requests): the memory store's updates,
//     queued behind running reads, after the sinks got the interval.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "server/engine.h"
#include "server/memory_store.h"
#include "server/server_status.h"
#include "server/sinks/sink.h"

namespace statherd::server {

// Where the transport hands a batch body; `answer` is called once, from any thread.
class IngestPort {
 public:
  virtual ~IngestPort() = default;
  virtual void ingest(std::string_view body, std::function<void(IngestOutcome)> answer) = 0;
};

struct PipelineOptions {
  std::function<void(int64_t now_ms)> before_flush;  // on the pipeline thread before each rollup
  std::function<int64_t()> now_ms;                   // wall clock, unix ms
};

class Pipeline : public IngestPort {
 public:
  // `store` gets each interval on `reads` (the read thread) after every sink got it.
  Pipeline(PipelineOptions options, Engine& engine, MemoryStore& store, std::vector<Sink*> sinks,
           boost::asio::thread_pool& reads, ServerStatus& status);
  ~Pipeline() override;  // drain()s if start()ed and not drained
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // The WAL committer (with a state_dir) and the rollup clock.
  Status start();
  void ingest(std::string_view body, std::function<void(IngestOutcome)> answer) override;
  // Runs `task` on the pipeline thread, between rollups (SIGHUP reloads).
  void post(std::function<void()> task);
  // Thread-safe, once: stops the clock, logs what the committer holds, rolls the last interval
  // up to every sink and the store, writes a snapshot; returns when that is done. Batches
  // arriving afterwards are refused (503).
  void drain();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace statherd::server
