// The server's network sinks as one Sink that a reload can change while the server runs:
// the Prometheus sink (always on, behind GET /metrics), and the Graphite and remote_write sinks
// when configured. apply() creates, reconfigures or retires those two to match a config:
//   - a sink that stays configured is reconfigured in place, so its queue (lines or samples not
//     delivered yet) is kept and goes to the new destination: a reload loses nothing buffered;
//   - a sink no longer configured is retired: it gets its stop_timeout to deliver its queue to
//     its old destination on a thread of its own (ingest never waits), the rest is dropped and
//     counted in its log line;
//   - a newly configured sink starts with the next interval.
// emit() and apply() are called from the server's pipeline thread. Another thread that reads
// graphite()/remote_write() (their counters, options) holds lock() meanwhile: apply() holds it
// while it adds, reconfigures or retires a sink.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/fork_join_pool.h"
#include "server/server_config.h"
#include "server/shard_gate.h"
#include "server/sinks/graphite.h"
#include "server/sinks/prometheus.h"
#include "server/sinks/remote_write.h"
#include "server/sinks/sink.h"

namespace statherd::server {

GraphiteSinkOptions graphite_options_from(const ServerConfig& config);
// nullopt when remote_write.url is empty (or does not parse: validated before).
std::optional<RemoteWriteSinkOptions> remote_write_options_from(const ServerConfig& config);

class SinkSet : public Sink {
 public:
  explicit SinkSet(PrometheusSink& prometheus);
  ~SinkSet() override;

  // Makes the Graphite and remote_write sinks match `config`. Returns one human-readable line
  // per change ("graphite: address 127.0.0.1:2003 -> 127.0.0.1:2103"); empty: nothing changed.
  std::vector<std::string> apply(const ServerConfig& config);

  // In a cluster (an etcd section): Graphite and remote_write get what `gate` passes (the
  // shards this server leads, and held intervals it gained the lead of); GET /metrics and the
  // history still get every interval whole. Set before the first emit(); outlives this set's use.
  void set_gate(ShardGate* gate) { gate_ = gate; }

  std::string name() const override { return "sinks"; }
  void emit(const IntervalOutput& out) override;
  // Stops every sink (each flushes within its stop_timeout) and waits for retired ones.
  void stop() override;

  GraphiteSink* graphite() const { return graphite_.get(); }
  RemoteWriteSink* remote_write() const { return remote_write_.get(); }
  PrometheusSink& prometheus() const { return prometheus_; }
  [[nodiscard]] std::unique_lock<std::mutex> lock() const { return std::unique_lock(mu_); }
  // Joins the retired sinks' threads that have finished; returns how many still run.
  size_t retired_threads();

 private:
  void retire(std::unique_ptr<Sink> sink);

  PrometheusSink& prometheus_;
  std::unique_ptr<ForkJoinPool> beside_;  // emit(): Prometheus beside the others; null: in turn
  std::unique_ptr<GraphiteSink> graphite_;
  std::unique_ptr<RemoteWriteSink> remote_write_;
  ShardGate* gate_ = nullptr;
  struct Retiring {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  void reap_retired();  // joins the finished ones
  std::vector<Retiring> retiring_;
  mutable std::mutex mu_;
};

}  // namespace statherd::server
