#include "server/sink_set.h"

#include <system_error>

#include "common/log.h"
#include "common/thread_name.h"

namespace statherd::server {

namespace {

std::string rules_text(const GraphiteRules& rules) {
  static const char* kinds[] = {"allow", "forbid", "prune"};
  std::string text;
  for (const GraphiteRule& r : rules.rules())
    text += std::string(kinds[static_cast<int>(r.kind)]) + ":" + r.pattern + "\n";
  return text;
}

template <typename T>
void note_change(std::vector<std::string>& changes, const std::string& what, const T& before,
                 const T& after) {
  if (before == after) return;
  if constexpr (std::is_same_v<T, std::string>) {
    changes.push_back(what + " '" + before + "' -> '" + after + "'");
  } else if constexpr (std::is_same_v<T, bool>) {
    changes.push_back(what + (after ? " on" : " off"));
  } else {
    changes.push_back(what + " " + std::to_string(before) + " -> " + std::to_string(after));
  }
}

std::vector<std::string> graphite_changes(const GraphiteSinkOptions& a,
                                          const GraphiteSinkOptions& b) {
  std::vector<std::string> c;
  note_change(c, "graphite: address", a.address, b.address);
  note_change(c, "graphite: prefix", a.prefix, b.prefix);
  note_change(c, "graphite: tags", a.tags, b.tags);
  note_change(c, "graphite: queue_max_lines", a.queue_max_lines, b.queue_max_lines);
  note_change(c, "graphite: max_new_series_per_minute", a.max_new_series_per_minute,
              b.max_new_series_per_minute);
  if (rules_text(a.rules) != rules_text(b.rules))
    c.push_back("graphite: rules changed (" + std::to_string(b.rules.rules().size()) + " rules)");
  return c;
}

std::vector<std::string> remote_write_changes(const RemoteWriteSinkOptions& a,
                                              const RemoteWriteSinkOptions& b) {
  std::vector<std::string> c;
  note_change(c, "remote_write: url", a.url.to_string(), b.url.to_string());
  note_change(c, "remote_write: queue_max_samples", a.queue_max_samples, b.queue_max_samples);
  note_change(c, "remote_write: batch_max_samples", a.batch_max_samples, b.batch_max_samples);
  note_change(c, "remote_write: timeout_ms", static_cast<int64_t>(a.timeout.count()),
              static_cast<int64_t>(b.timeout.count()));
  return c;
}

}  // namespace

GraphiteSinkOptions graphite_options_from(const ServerConfig& config) {
  GraphiteSinkOptions g;
  g.address = config.graphite_address;
  g.prefix = config.graphite_prefix;
  g.queue_max_lines = config.graphite_queue_max_lines;
  g.max_new_series_per_minute = config.graphite_max_new_series_per_minute;
  g.tags = config.graphite_tags;
  g.rules = config.graphite_rules;
  return g;
}

std::optional<RemoteWriteSinkOptions> remote_write_options_from(const ServerConfig& config) {
  if (config.remote_write_url.empty()) return std::nullopt;
  auto url = parse_remote_write_url(config.remote_write_url);
  if (!url) return std::nullopt;
  RemoteWriteSinkOptions o;
  o.url = *url;
  o.queue_max_samples = config.remote_write_queue_max_samples;
  o.batch_max_samples = config.remote_write_batch_max_samples;
  o.timeout = config.remote_write_timeout;
  if (!config.state_dir.empty()) o.hwm_path = config.state_dir + "/remote_write.hwm";
  return o;
}

SinkSet::SinkSet(PrometheusSink& prometheus) : prometheus_(prometheus) {
  try {
    beside_ = std::make_unique<ForkJoinPool>(2, "sinks");
  } catch (const std::system_error& e) {  // no thread: the sinks in turn, for good (logged)
    log::warn(std::string("sinks: no second thread, the sinks take an interval in turn: ") + e.what());
  }
}

SinkSet::~SinkSet() { stop(); }

std::vector<std::string> SinkSet::apply(const ServerConfig& config) {
  std::lock_guard<std::mutex> guard(mu_);
  std::vector<std::string> changes;
  if (config.graphite_address.empty()) {
    if (graphite_) {
      changes.push_back("graphite: sink removed (was " + graphite_->options().address + ")");
      retire(std::move(graphite_));
    }
  } else if (!graphite_) {
    graphite_ = std::make_unique<GraphiteSink>(graphite_options_from(config));
    changes.push_back("graphite: sink added, address " + config.graphite_address);
  } else {
    GraphiteSinkOptions next = graphite_options_from(config);
    auto c = graphite_changes(graphite_->options(), next);
    if (!c.empty()) graphite_->reconfigure(std::move(next));
    changes.insert(changes.end(), c.begin(), c.end());
  }

  std::optional<RemoteWriteSinkOptions> rw = remote_write_options_from(config);
  if (!rw) {
    if (remote_write_) {
      changes.push_back("remote_write: sink removed (was " +
                        remote_write_->options().url.to_string() + ")");
      retire(std::move(remote_write_));
    }
  } else if (!remote_write_) {
    remote_write_ = std::make_unique<RemoteWriteSink>(*rw);
    changes.push_back("remote_write: sink added, url " + rw->url.to_string());
  } else {
    auto c = remote_write_changes(remote_write_->options(), *rw);
    if (!c.empty()) remote_write_->reconfigure(std::move(*rw));
    changes.insert(changes.end(), c.begin(), c.end());
  }
  return changes;
}

// The sinks share nothing but the (immutable) interval: with another sink configured, the
// Prometheus sink converts it while the others take it, on the two threads of beside_ (the
// caller's, pipeline, and one kept for it, sinks-1: a thread made per interval cost its start,
// a fresh tcmalloc cache and fresh stack pages every second at interval: 1s). Which of the two
// takes which part is not fixed (mostly the caller takes Prometheus; when sinks-1 wakes late
// the caller does both). emit() returns when every sink has it, as before: reloads (apply())
// never overlap an emit.
void SinkSet::emit(const IntervalOutput& out) {
  auto others = [&] {
    if (gate_) {  // always passed, sinks or none: it keeps the record of what was emitted
      for (const IntervalOutput& led : gate_->pass(out)) {
        if (graphite_) graphite_->emit(led);
        if (remote_write_) remote_write_->emit(led);
      }
      return;
    }
    if (graphite_) graphite_->emit(out);
    if (remote_write_) remote_write_->emit(out);
  };
  if (beside_ && (graphite_ || remote_write_ || gate_)) {
    beside_->run(2, [&](size_t i) {
      if (i == 0) prometheus_.emit(out);
      else others();
    });
    return;
  }
  prometheus_.emit(out);
  others();
}

// A removed sink delivers what it holds to its old destination (bounded by its stop_timeout)
// on a thread of its own, so the io thread never waits for a slow or dead receiver.
void SinkSet::retire(std::unique_ptr<Sink> sink) {
  reap_retired();
  std::shared_ptr<Sink> owned(std::move(sink));
  auto done = std::make_shared<std::atomic<bool>>(false);
  retiring_.push_back({std::thread([owned, done] {
                         name_this_thread("sink-retire");
                         owned->stop();
                         log::info(owned->name() + ": retired sink stopped");
                         *done = true;
                       }),
                       done});
}

void SinkSet::reap_retired() {
  std::erase_if(retiring_, [](Retiring& r) {
    if (!*r.done) return false;
    r.thread.join();
    return true;
  });
}

// The network sinks flush in parallel, so a dead Carbon and a dead receiver together take one
// stop_timeout, not two.
size_t SinkSet::retired_threads() {
  reap_retired();
  return retiring_.size();
}

void SinkSet::stop() {
  std::vector<std::thread> stopping;
  if (graphite_) stopping.emplace_back([g = graphite_.get()] { g->stop(); });
  if (remote_write_) stopping.emplace_back([r = remote_write_.get()] { r->stop(); });
  for (std::thread& t : stopping) t.join();
  prometheus_.stop();
  for (Retiring& r : retiring_)
    if (r.thread.joinable()) r.thread.join();
  retiring_.clear();
}

}  // namespace statherd::server
