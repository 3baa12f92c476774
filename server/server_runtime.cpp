#include "server/server_runtime.h"

#include <prometheus/text_serializer.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "common/log.h"
#include "server/self_samples.h"
#include "server/server_reload.h"

namespace statherd::server {

namespace {

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

// The process's resident set, from /proc/self/statm (its second field, in pages); 0 when it
// cannot be read (e.g. no descriptor left).
uint64_t resident_bytes() {
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  unsigned long long size = 0, resident = 0;
  if (std::sscanf(buf, "%llu %llu", &size, &resident) != 2) return 0;
  const long page = ::sysconf(_SC_PAGESIZE);
  return page > 0 ? resident * static_cast<uint64_t>(page) : 0;
}

std::string join(const std::vector<std::string>& lines, const std::string& sep) {
  std::string out;
  for (const std::string& l : lines) out += (out.empty() ? "" : sep) + l;
  return out;
}

}  // namespace

ServerRuntime::ServerRuntime(ServerConfig config, std::vector<std::string> args, Engine& engine,
                             MemoryStore& store, SinkSet& sinks, IngestToken& token,
                             const ServerStatus& status, int64_t started_ms,
                             std::function<std::optional<HeapFigures>()> heap_probe)
    : config_(std::move(config)),
      store_naming_{config_.graphite_prefix, config_.graphite_tags},
      args_(std::move(args)),
      engine_(engine),
      store_(store),
      sinks_(sinks),
      token_(token),
      status_(status),
      wal_on_(!config_.state_dir.empty()),
      self_id_{host_name(), "self", static_cast<int64_t>(::getpid()), started_ms,
               "statherd-server"},
      heap_probe_(std::move(heap_probe)) {}

ServerSelfValues ServerRuntime::self_values() const {
  ServerSelfValues v{engine_.stats(), store_.path_count(), store_.refused_paths(),
                     sinks_.prometheus().counters(), std::nullopt};
  {
    auto held = sinks_.lock();  // a reload on the pipeline thread may change them
    if (sinks_.graphite()) v.graphite = sinks_.graphite()->counters();
    if (sinks_.remote_write()) v.remote_write = sinks_.remote_write()->counters();
  }
  v.reloads_ok = reloads_ok_.load();
  v.reloads_failed = reloads_failed_.load();
  v.rollup_ms = status_.last_rollup_ms.load();
  ConnectionCounts c = status_.connections();
  v.connections_open = c.open;
  v.connections_evicted = c.evicted;
  v.connections_refused = c.refused;
  v.ready = readiness()["ready"].get<bool>();
  v.resident_bytes = resident_bytes();
  if (heap_probe_) v.heap = heap_probe_();
  return v;
}

std::string ServerRuntime::scrape() {
  ScrapeText text = prepare_scrape()();
  return *text.shared + text.own;
}

std::function<ScrapeText()> ServerRuntime::prepare_scrape() {
  self_metrics_.update(self_values());
  return [&sink = sinks_.prometheus(), self = self_metrics_.collect()] {
    return ScrapeText{sink.shared_text(), prometheus::TextSerializer().Serialize(self)};
  };
}

void ServerRuntime::ingest_self(int64_t now_ms) {
  self_metrics_.update(self_values());
  SourceSamples self = self_samples_from_families(self_metrics_.collect(), self_id_, now_ms);
  self.fresh = true;  // this process's counters started at zero
  engine_.ingest_local(self, now_ms);
}

nlohmann::json ServerRuntime::readiness() const {
  EngineStats st = engine_.stats();
  const bool draining = status_.draining.load();
  nlohmann::json sinks = nlohmann::json::object();
  auto held = sinks_.lock();  // a reload on the pipeline thread may change them
  if (const GraphiteSink* g = sinks_.graphite()) {
    auto c = g->counters();
    sinks["graphite"] = {{"queue_depth", c.queue_depth},
                         {"queue_max", g->options().queue_max_lines},
                         {"dropped", c.lines_dropped}};
  }
  if (const RemoteWriteSink* rw = sinks_.remote_write()) {
    auto c = rw->counters();
    sinks["remote_write"] = {{"queue_depth", c.queue_depth},
                             {"queue_max", rw->options().queue_max_samples},
                             {"dropped", c.samples_dropped},
                             {"last_status", c.last_status}};
  }
  return {{"ready", !draining && st.wal_ok},
          {"draining", draining},
          {"wal", !wal_on_ ? "off" : (st.wal_ok ? "ok" : "failing")},
          {"wal_recovery", {{"damaged_records", st.wal_damaged_records},
                            {"quarantined_records", st.wal_quarantined_records},
                            {"last_damage", st.wal_last_damage},
                            {"snapshot_quarantined", st.snapshot_quarantined}}},
          {"reloads", {{"ok", reloads_ok_.load()}, {"failed", reloads_failed_.load()}}},
          {"sinks", std::move(sinks)}};
}

bool ServerRuntime::reload() {
  const std::string what =
      config_.config_file.empty() ? std::string("the command line") : config_.config_file;
  ReloadPlan plan = plan_reload(args_, config_, &store_naming_);
  if (!plan.ok) {
    ++reloads_failed_;
    log::error("SIGHUP: reload of " + what + " failed; keeping the running configuration:\n" +
               plan.error);
    return false;
  }
  for (const std::string& line : plan.kept) log::warn("SIGHUP: " + line);
  token_.set(plan.token);
  std::vector<std::string> changes = sinks_.apply(plan.config);
  config_ = std::move(plan.config);
  ++reloads_ok_;
  log::info("SIGHUP: reloaded " + what +
            (changes.empty() ? "; sinks unchanged" : ": " + join(changes, "; ")));
  return true;
}

}  // namespace statherd::server
