// statherd-server's service lifecycle without sockets: which keys a SIGHUP applies and which
// need a restart, a bad file keeps the running configuration, sinks added / reconfigured /
// retired by SinkSet, the token swap, GET /readyz, and the self-metrics that go through the
// pipeline (ServerSelfMetrics families -> "self" samples -> Engine::ingest_local).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <vector>

#include "server/api_routes.h"
#include "server/engine.h"
#include "server/memory_store.h"
#include "server/self_samples.h"
#include "server/server_reload.h"
#include "server/server_runtime.h"
#include "server/sink_set.h"
#include "server/sinks/prometheus_self.h"

namespace statherd::server {
namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/statherd-reload-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = path + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
};

// A config file whose listen/token/graphite keys the test chooses; graphite "" = no sink.
std::string config_text(const std::string& token_file, const std::string& graphite,
                        const std::string& more = "") {
  return "listen: 127.0.0.1:18470\ntoken_file: " + token_file + "\ninterval: 10s\n" +
         "graphite:\n  address: \"" + graphite + "\"\n  queue_max_lines: 100\n" + more;
}

TEST(ServerReload, RestartOnlyKeysAreReportedAndKept) {
  ServerConfig running, next;
  next.interval = std::chrono::seconds(5);
  next.listen = "0.0.0.0:8470";
  next.graphite_address = "127.0.0.1:2003";
  next.graphite_queue_max_lines = 7;
  auto kept = restart_only_changes(running, next);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0], "listen: 127.0.0.1:8470 -> 0.0.0.0:8470 needs a restart; keeping "
                     "127.0.0.1:8470");
  EXPECT_EQ(kept[1], "interval: 10000ms -> 5000ms needs a restart; keeping 10000ms");
  ServerConfig merged = merge_reloadable(running, next);
  EXPECT_EQ(merged.interval, running.interval);
  EXPECT_EQ(merged.listen, running.listen);
  EXPECT_EQ(merged.graphite_address, "127.0.0.1:2003");
  EXPECT_EQ(merged.graphite_queue_max_lines, 7u);
  EXPECT_TRUE(restart_only_changes(running, running).empty());
}

// Hostile review F5: after two prefix reloads (a -> b -> c) the store still names its paths
// with the prefix it started with (a), not the one the last reload gave the sink (b); a
// reload back to a warns of nothing.
TEST(ServerReload, ThePrefixWarningNamesThePrefixTheStoreKeeps) {
  ServerConfig started;
  started.graphite_prefix = "a";
  ServerConfig next = started;
  next.graphite_prefix = "b";
  ServerConfig running = merge_reloadable(started, next);
  const StoreNaming store{started.graphite_prefix, false};
  next.graphite_prefix = "c";
  auto kept = restart_only_changes(running, next, &store);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0], "graphite.prefix: the Graphite sink uses 'c' now; /render and "
                     "/metrics/find keep 'a' until a restart");
  next.graphite_prefix = "a";
  EXPECT_TRUE(restart_only_changes(running, next, &store).empty());
}

// graphite.tags changes the sink's names at once; the store keeps its own until a restart.
TEST(ServerReload, TheTagsWarningSaysWhatTheStoreKeeps) {
  ServerConfig running;
  ServerConfig next = running;
  next.graphite_tags = true;
  const StoreNaming store{running.graphite_prefix, false};
  auto kept = restart_only_changes(running, next, &store);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0],
            "graphite.tags: the Graphite sink uses true now; /render, /metrics/find "
            "and /tags keep false until a restart");
  EXPECT_EQ(merge_reloadable(running, next).graphite_tags, true);
}

TEST(ServerReload, BadFileOrTokenIsRefusedWithItsPosition) {
  TempDir dir;
  std::string token = dir.write("token", "s3cret\n");
  std::string file = dir.write("server.yaml", config_text(token, "-", "graphit: {}\n"));
  ReloadPlan plan = plan_reload({"--config", file}, ServerConfig{});
  EXPECT_FALSE(plan.ok);
  EXPECT_NE(plan.error.find(file + ":7:1: "), std::string::npos) << plan.error;
  EXPECT_NE(plan.error.find("graphit"), std::string::npos) << plan.error;

  dir.write("server.yaml", config_text(dir.path + "/missing-token", "-"));
  plan = plan_reload({"--config", file}, ServerConfig{});
  EXPECT_FALSE(plan.ok);
  EXPECT_NE(plan.error.find("missing-token"), std::string::npos) << plan.error;

  dir.write("server.yaml", config_text(token, "-"));
  plan = plan_reload({"--config", file}, ServerConfig{});
  ASSERT_TRUE(plan.ok) << plan.error;
  EXPECT_EQ(plan.token, "s3cret");
  EXPECT_EQ(plan.config.graphite_address, "-");
}

TEST(SinkSet, AddsReconfiguresAndRetiresSinks) {
  PrometheusSink prometheus;
  SinkSet sinks(prometheus);
  ServerConfig c;
  EXPECT_TRUE(sinks.apply(c).empty());
  EXPECT_EQ(sinks.graphite(), nullptr);

  c.graphite_address = "127.0.0.1:9";  // nothing needs to listen: no line is queued
  auto changes = sinks.apply(c);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0], "graphite: sink added, address 127.0.0.1:9");
  GraphiteSink* kept = sinks.graphite();
  ASSERT_NE(kept, nullptr);

  c.graphite_address = "127.0.0.1:10";
  c.graphite_tags = true;
  changes = sinks.apply(c);
  EXPECT_EQ(changes, (std::vector<std::string>{"graphite: address '127.0.0.1:9' -> '127.0.0.1:10'",
                                               "graphite: tags on"}));
  EXPECT_EQ(sinks.graphite(), kept) << "reconfigured in place: its queue is kept";
  EXPECT_EQ(kept->options().address, "127.0.0.1:10");
  EXPECT_TRUE(sinks.apply(c).empty());

  c.remote_write_url = "http://127.0.0.1:9/api/v1/write";
  changes = sinks.apply(c);
  EXPECT_EQ(changes, (std::vector<std::string>{
                         "remote_write: sink added, url http://127.0.0.1:9/api/v1/write"}));
  ASSERT_NE(sinks.remote_write(), nullptr);

  c.graphite_address.clear();
  c.remote_write_url.clear();
  changes = sinks.apply(c);
  EXPECT_EQ(changes.size(), 2u);
  EXPECT_EQ(sinks.graphite(), nullptr);
  EXPECT_EQ(sinks.remote_write(), nullptr);
  sinks.stop();
}

// A retired sink's thread is joined once it has finished, not kept until stop(): each one kept
// its stack mapped, ~8.8 MB of address space per sink-removing reload (hostile review).
TEST(SinkSet, RetiredSinksThreadsAreJoinedOnceFinished) {
  PrometheusSink prometheus;
  SinkSet sinks(prometheus);
  ServerConfig with, without;
  with.graphite_address = "127.0.0.1:9";
  for (int i = 0; i < 20; ++i) {
    sinks.apply(with);
    sinks.apply(without);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (sinks.retired_threads() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  EXPECT_EQ(sinks.retired_threads(), 0u);
  sinks.stop();
}

class RuntimeTest : public ::testing::Test {
 protected:
  RuntimeTest()
      : engine_(EngineOptions{}), store_(MemoryStoreOptions{}), sinks_(prometheus_),
        routes_(token_, engine_, store_, now) {}
  static int64_t now() { return 1'700'000'000'000; }

  TempDir dir_;
  IngestToken token_{"old-token"};  // main's: the runtime replaces it, the routes read it
  Engine engine_;
  MemoryStore store_;
  PrometheusSink prometheus_;
  SinkSet sinks_;
  ApiRoutes routes_;
  ServerStatus status_;
};

TEST_F(RuntimeTest, ReloadSwapsTokenAndSinksOrKeepsEverything) {
  std::string token = dir_.write("token", "new-token\n");
  std::string file = dir_.write("server.yaml", config_text(token, ""));
  ServerConfig config;
  ASSERT_TRUE(load_server_config_file(file, config));
  ServerRuntime runtime(config, {"--config", file}, engine_, store_, sinks_, token_, status_, 0);

  dir_.write("server.yaml", config_text(token, "127.0.0.1:9"));
  EXPECT_TRUE(runtime.reload());
  EXPECT_TRUE(routes_.authorized("Bearer new-token"));
  EXPECT_FALSE(routes_.authorized("Bearer old-token"));
  ASSERT_NE(sinks_.graphite(), nullptr);
  EXPECT_EQ(runtime.reloads_ok(), 1u);

  dir_.write("server.yaml", "listen: [\n");
  EXPECT_FALSE(runtime.reload());
  EXPECT_EQ(runtime.reloads_failed(), 1u);
  EXPECT_TRUE(routes_.authorized("Bearer new-token"));
  EXPECT_EQ(runtime.config().graphite_address, "127.0.0.1:9") << "running config kept";
  EXPECT_NE(sinks_.graphite(), nullptr);

  auto values = runtime.self_values();
  EXPECT_EQ(values.reloads_ok, 1u);
  EXPECT_EQ(values.reloads_failed, 1u);
  ASSERT_TRUE(values.graphite.has_value());
  sinks_.stop();
}

TEST_F(RuntimeTest, ReadyzAnswers200WithChecksAnd503WhenNotReady) {
  ServerRuntime runtime(ServerConfig{}, {}, engine_, store_, sinks_, token_, status_, 0);
  ApiRoutesOptions from_runtime;
  from_runtime.readiness = [&] { return runtime.readiness(); };
  ApiRoutes routes(token_, engine_, store_, now, std::move(from_runtime));
  ApiResponse r = routes.handle({"GET", "/readyz", "", ""});
  EXPECT_EQ(r.status, 200);
  auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["ready"], true);
  EXPECT_EQ(body["wal"], "off");
  EXPECT_EQ(body["draining"], false);

  ApiRoutesOptions failing;
  failing.readiness = [] { return nlohmann::json{{"ready", false}, {"wal", "failing"}}; };
  ApiRoutes unready(token_, engine_, store_, now, std::move(failing));
  r = unready.handle({"GET", "/readyz", "", ""});
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("failing"), std::string::npos);
}

// Memory, for an operator comparing hosts: the process's RSS always (from /proc), the
// allocator's figures when the server was given a probe (main gives tcmalloc's or glibc's),
// as gauges on /metrics and self samples (Graphite: <prefix>.self.server.resident_bytes.*).
TEST_F(RuntimeTest, SelfMetricsReportResidentMemoryAndTheHeapProbesFigures) {
  int calls = 0;
  ServerRuntime runtime(ServerConfig{}, {}, engine_, store_, sinks_, token_, status_, 0, [&] {
    ++calls;
    return std::optional<HeapFigures>(HeapFigures{123'000'000 + uint64_t(calls), 4'500'000});
  });
  const uint64_t before = runtime.self_values().resident_bytes;
  EXPECT_GT(before, 1u << 20) << "a test process holds more than 1 MiB";
  // 64 MiB touched: the next figure must see it (a figure computed once would not).
  // 256 MiB mapped, never touched: the address space grows, the resident set does not (a
  // figure read from the wrong field of statm would grow).
  void* untouched = ::mmap(nullptr, 256u << 20, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(untouched, MAP_FAILED);
  const uint64_t mapped = runtime.self_values().resident_bytes;
  EXPECT_LT(mapped, before + (128u << 20));
  ::munmap(untouched, 256u << 20);
  std::vector<char> touched(64u << 20, 1);
  ServerSelfValues v = runtime.self_values();
  EXPECT_GE(v.resident_bytes, mapped + (48u << 20));
  ASSERT_TRUE(v.heap.has_value());
  EXPECT_EQ(v.heap->allocated, 123'000'003u);
  EXPECT_EQ(v.heap->free, 4'500'000u);

  std::string text = runtime.scrape();
  EXPECT_NE(text.find("# TYPE statherd_server_resident_bytes gauge"), std::string::npos);
  EXPECT_NE(text.find("statherd_server_heap_allocated_bytes 123000004"), std::string::npos)
      << text.substr(0, 400);
  EXPECT_NE(text.find("statherd_server_heap_free_bytes 4500000"), std::string::npos);
  EXPECT_EQ(touched[12345], 1);

  ServerSelfMetrics metrics;
  metrics.update(v);
  SourceSamples ss = self_samples_from_families(metrics.collect(), {"h", "self", 1, 1, "s"}, 9);
  std::map<std::string, double> by_name;
  for (const Sample& s : ss.samples) by_name[s.name] = s.value;
  EXPECT_EQ(by_name.at("server.heap_allocated_bytes"), 123'000'003.0);
  EXPECT_EQ(by_name.at("server.resident_bytes"), static_cast<double>(v.resident_bytes));
}

TEST_F(RuntimeTest, WithoutAHeapProbeNoHeapGaugeIsExported) {
  ServerRuntime runtime(ServerConfig{}, {}, engine_, store_, sinks_, token_, status_, 0);
  EXPECT_FALSE(runtime.self_values().heap.has_value());
  std::string text = runtime.scrape();
  EXPECT_EQ(text.find("statherd_server_heap_"), std::string::npos);
  EXPECT_NE(text.find("statherd_server_resident_bytes "), std::string::npos);
}

TEST(SelfSamples, FamiliesBecomeSelfSamplesUnderServer) {
  ServerSelfMetrics metrics;
  ServerSelfValues v;
  v.engine.batches = 7;
  v.engine.series = 3;
  v.reloads_failed = 2;
  metrics.update(v);
  SourceIdentity id{"h1", "self", 42, 1000, "statherd-server"};
  SourceSamples ss = self_samples_from_families(metrics.collect(), id, 5000);
  EXPECT_EQ(ss.id, id);
  std::map<std::string, std::pair<Kind, double>> by_name;
  for (const Sample& s : ss.samples) {
    EXPECT_EQ(s.timestamp_ms, 5000);
    by_name[s.name] = {s.kind, s.value};
  }
  ASSERT_TRUE(by_name.count("server.batches"));
  EXPECT_EQ(by_name["server.batches"], std::make_pair(Kind::Counter, 7.0));
  EXPECT_EQ(by_name["server.series"], std::make_pair(Kind::Gauge, 3.0));
  EXPECT_EQ(by_name["server.reloads_failed"], std::make_pair(Kind::Counter, 2.0));
  for (const auto& [name, kv] : by_name) EXPECT_EQ(name.rfind("server.", 0), 0u) << name;
}

// Self samples are rolled up like an agent's: counters counted from zero (fresh), not in
// samples_in, and emitted as app "self" (Graphite: <prefix>.self.server.*).
TEST(SelfSamples, IngestLocalRollsUpWithoutCountingAsInput) {
  EngineOptions o;
  o.interval = std::chrono::seconds(10);
  o.grace = std::chrono::milliseconds(0);
  Engine engine(o);
  ASSERT_TRUE(engine.open(1'700'000'000'000));
  SourceSamples ss;
  ss.id = {"h1", "self", 42, 1000, "statherd-server"};
  ss.fresh = true;
  Sample s;
  s.name = "server.batches";
  s.kind = Kind::Counter;
  s.value = 5;
  s.timestamp_ms = 1'700'000'001'000;
  ss.samples.push_back(s);
  engine.ingest_local(ss, 1'700'000'001'000);
  ss.samples[0].value = 8;
  ss.samples[0].timestamp_ms = 1'700'000'002'000;
  engine.ingest_local(ss, 1'700'000'002'000);
  EXPECT_EQ(engine.stats().samples_in, 0u);
  double count = -1;
  for (const IntervalOutput& out : engine.flush(1'700'000'011'000))
    for (const SeriesPoint& p : flat_points(out))
      if (p.app == "self" && p.metric == "server.batches" && p.level == Level::App &&
          p.stat == "count")
        count = p.value;
  EXPECT_EQ(count, 8.0);
}

}  // namespace
}  // namespace statherd::server
