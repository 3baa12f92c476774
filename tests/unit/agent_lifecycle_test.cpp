// The agent's lifecycle pieces: self-metric names, the status file, and reloads that keep
// unchanged sources (so no file is seen "fresh" twice) and never fail on restart-only keys.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <map>

#include "agent/reload.h"
#include "agent/self_metrics.h"
#include "agent/source_set.h"
#include "agent/status_file.h"

namespace statherd::agent {
namespace {

using namespace std::chrono_literals;

TEST(AgentSelfMetrics, NamesAreUnderAgentWithKindAndResultTags) {
  AgentSelfCounters c;
  c.know_kind("mmstats_v1");
  c.sources_read["mmstats_v1"] = 7;
  c.scrape_errors["mmstats_v1"] = 2;
  c.samples_read = 70;
  c.batches_written = 5;
  c.replayed_batches = 1;
  c.reloads_ok = 3;
  c.reloads_failed = 1;
  c.scrape_ms = 1.5;
  DeliveryStats d;
  d.acked = 4;
  d.failed_attempts = 2;
  d.quarantined = 3;
  d.split_batches = 6;
  d.unauthorized = 1;
  SourceSamples ss = agent_self_metrics("h1", 42, 1'000, 9'000, c, d, {100, 2, 1, 2, 700, 1});
  EXPECT_EQ(ss.id, (SourceIdentity{"h1", "self", 42, 1'000, "statherd-agent"}));
  std::map<std::string, const Sample*> by_key;
  for (const auto& s : ss.samples) {
    std::string key = s.name;
    for (const auto& [k, v] : s.tags) key += ";" + k + "=" + v;
    EXPECT_TRUE(by_key.emplace(key, &s).second) << "duplicate " << key;
    EXPECT_EQ(s.name.rfind("agent.", 0), 0u) << s.name;
    EXPECT_EQ(s.timestamp_ms, 9'000);
  }
  auto value = [&](const std::string& key, Kind kind) {
    auto it = by_key.find(key);
    if (it == by_key.end()) {
      ADD_FAILURE() << "missing " << key;
      return -1.0;
    }
    EXPECT_EQ(it->second->kind, kind) << key;
    return it->second->value;
  };
  EXPECT_EQ(value("agent.sources_read;source=mmstats_v1", Kind::Counter), 7);
  EXPECT_EQ(value("agent.scrape_errors;source=mmstats_v1", Kind::Counter), 2);
  EXPECT_EQ(value("agent.samples_read", Kind::Counter), 70);
  EXPECT_DOUBLE_EQ(value("agent.scrape_seconds", Kind::Gauge), 0.0015);
  EXPECT_EQ(value("agent.spool.batches_written", Kind::Counter), 5);
  EXPECT_EQ(value("agent.spool.bytes", Kind::Gauge), 100);
  EXPECT_EQ(value("agent.spool.batches", Kind::Gauge), 2);
  EXPECT_EQ(value("agent.spool.dropped_batches", Kind::Counter), 1);
  EXPECT_EQ(value("agent.ship.acked_batches", Kind::Counter), 4);
  EXPECT_EQ(value("agent.ship.failed_attempts", Kind::Counter), 2);
  // agent.ship.rejected_batches is gone: no batch is dropped for an answer any more.
  EXPECT_EQ(by_key.count("agent.ship.rejected_batches"), 0u);
  EXPECT_EQ(value("agent.spool.quarantined_batches", Kind::Counter), 3);
  EXPECT_EQ(value("agent.spool.quarantine.batches", Kind::Gauge), 2);
  EXPECT_EQ(value("agent.spool.quarantine.bytes", Kind::Gauge), 700);
  EXPECT_EQ(value("agent.spool.quarantine.dropped_batches", Kind::Counter), 1);
  EXPECT_EQ(value("agent.ship.split_batches", Kind::Counter), 6);
  EXPECT_EQ(value("agent.ship.unauthorized", Kind::Counter), 1);
  EXPECT_EQ(value("agent.ship.replayed_batches", Kind::Counter), 1);
  EXPECT_EQ(value("agent.reloads;result=ok", Kind::Counter), 3);
  EXPECT_EQ(value("agent.reloads;result=failed", Kind::Counter), 1);
}

TEST(AgentStatusFile, RoundTripsThroughTheSpoolDirAndJudgesLiveness) {
  char tmpl[] = "/tmp/statherd-status-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  AgentStatus s;
  s.pid = 1234;
  s.started_ms = 1'000;
  s.config_file = "/etc/statherd/agent.yaml";
  s.host = "h1";
  s.agent_id = "a1";
  s.server = "http://127.0.0.1:8470";
  s.interval_ms = 10'000;
  s.last_tick_ms = 50'000;
  s.sources = {{"mmstats_v1", "mmstats_v1 /tmp/*.mmstats", 3, 1, "/tmp/x.mmstats: truncated \xff"}};
  s.spool_batches = 2;
  s.quarantine_dir = dir + "/quarantine";
  s.quarantine_batches = 3;
  s.quarantine_bytes = 900;
  s.quarantined_total = 4;
  s.quarantine_dropped = 1;
  s.split_batches = 5;
  s.unauthorized = 6;
  s.ship_last_result = "retry_later";
  s.reloads_failed = 1;
  s.reload_last_result = "failed";
  s.reload_last_message = "reload failed: /etc/a.yaml:3:1: bad";
  ASSERT_TRUE(write_status_file(dir, s).ok());
  EXPECT_EQ(std::filesystem::status(dir + "/status.json").permissions() &
                std::filesystem::perms::others_write,
            std::filesystem::perms::none);
  auto back = read_status_file(dir);
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(back->pid, 1234);
  EXPECT_EQ(back->config_file, s.config_file);
  EXPECT_EQ(back->interval_ms, 10'000);
  ASSERT_EQ(back->sources.size(), 1u);
  EXPECT_EQ(back->sources[0].read, 3u);
  EXPECT_EQ(back->sources[0].first_error.rfind("/tmp/x.mmstats: truncated ", 0), 0u);
  EXPECT_EQ(back->reload_last_message, s.reload_last_message);
  EXPECT_EQ(back->ship_last_result, "retry_later");
  EXPECT_EQ(back->quarantine_dir, s.quarantine_dir);
  EXPECT_EQ(back->quarantine_batches, 3u);
  EXPECT_EQ(back->quarantine_bytes, 900u);
  EXPECT_EQ(back->quarantined_total, 4u);
  EXPECT_EQ(back->quarantine_dropped, 1u);
  EXPECT_EQ(back->split_batches, 5u);
  EXPECT_EQ(back->unauthorized, 6u);
  const std::string text = format_status(*back, 60'000, true, "");
  EXPECT_NE(text.find("quarantine: 3 batches, 900 bytes"), std::string::npos) << text;
  EXPECT_NE(text.find("5 split after 413"), std::string::npos) << text;
  std::string why;
  EXPECT_TRUE(status_looks_alive(*back, 79'000, true, &why)) << why;
  EXPECT_FALSE(status_looks_alive(*back, 81'000, true, &why));  // 3 intervals without a tick
  EXPECT_FALSE(status_looks_alive(*back, 60'000, false, &why));
  EXPECT_NE(why.find("1234"), std::string::npos);
  back->state = "stopped";
  EXPECT_FALSE(status_looks_alive(*back, 60'000, true, &why));
  std::filesystem::remove_all(dir);
  EXPECT_FALSE(read_status_file(dir).ok());
}

class AgentReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/statherd-reload-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/token") << "secret\n";
    config_file_ = dir_ + "/agent.yaml";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write_config(const std::string& extra) {
    std::ofstream(config_file_) << "server: http://127.0.0.1:1\ntoken_file: " << dir_
                                << "/token\nspool_dir: " << dir_ << "/spool\nhost: h1\n"
                                << extra;
  }
  std::string dir_, config_file_;
};

TEST_F(AgentReloadTest, SourceSetKeepsUnchangedSourcesAndRebuildsChangedOnes) {
  AgentConfig c;
  c.host = "h1";
  c.mmstats_globs = {dir_ + "/a/*.mmstats"};
  c.v2_globs = {dir_ + "/v2/*.statherd"};
  c.prom_multiproc_dirs = {dir_ + "/prom"};
  SourceSet set(c, 1'000);
  ASSERT_EQ(set.sources().size(), 3u);
  const Source* mm = set.sources()[0].get();
  const Source* v2 = set.sources()[1].get();
  const Source* prom = set.sources()[2].get();
  EXPECT_TRUE(set.update(c, 2'000).empty());
  EXPECT_EQ(set.sources()[0].get(), mm);
  c.mmstats_globs.push_back(dir_ + "/b/*.mmstats");
  c.prometheus_urls = {"http://127.0.0.1:9/metrics"};
  auto changes = set.update(c, 3'000);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].rfind("mmstats_v1 rebuilt", 0), 0u) << changes[0];
  EXPECT_EQ(changes[1].rfind("prometheus added", 0), 0u) << changes[1];
  ASSERT_EQ(set.sources().size(), 4u);
  EXPECT_NE(set.sources()[0].get(), mm);
  EXPECT_EQ(set.sources()[1].get(), v2);
  EXPECT_EQ(set.sources()[2].get(), prom);  // its in-memory totals of deleted files survive
  EXPECT_EQ(set.sources()[3]->kind(), "prometheus");
  c.prometheus_urls.clear();
  changes = set.update(c, 4'000);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0], "prometheus removed");
  EXPECT_EQ(set.sources().size(), 3u);
}

TEST_F(AgentReloadTest, ReloadAppliesSourcesAndIntervalKeepsRestartOnlyKeysAndFailsOnBadYaml) {
  write_config("agent_id: one\ninterval: 1s\nmmstats:\n  globs: [" + dir_ + "/a/*.mmstats]\n");
  auto cli = parse_command_line(
      3, std::array<const char*, 3>{"statherd-agent", "--config", config_file_.c_str()}.data());
  ASSERT_TRUE(cli.ok());
  LoadedConfig loaded = load_agent_config(*cli);
  ASSERT_TRUE(loaded.errors.empty()) << loaded.errors[0];
  AgentConfig running = loaded.config;
  auto spool = Spool::open(running.spool_dir, 1 << 20, 1'000).value();
  SourceSet sources(running, 0);
  ReloadableSender sender({parse_server_url(running.server).value(), "secret", "one", 5s},
                          [] { return int64_t{0}; });
  SpoolDelivery delivery(*spool, sender, Backoff(1s, 30s, 1));
  AgentLoop loop({"one", "h1", 1s, 2s, 0}, sources.sources(), *spool, delivery,
                 [] { return int64_t{0}; });
  const Source* v2 = sources.sources()[1].get();

  write_config("agent_id: two\ninterval: 2s\nship_timeout: 3s\nmmstats:\n  globs: [" + dir_ +
               "/a/*.mmstats, " + dir_ + "/b/*.mmstats]\netcd:\n  endpoints: http://127.0.0.1:2379\n");
  ReloadOutcome ok = reload_agent({*cli, running, sources, sender, loop}, 5'000);
  EXPECT_TRUE(ok.ok) << ok.message;
  EXPECT_NE(ok.message.find("mmstats_v1 rebuilt"), std::string::npos) << ok.message;
  EXPECT_NE(ok.message.find("need a restart"), std::string::npos) << ok.message;
  EXPECT_EQ(running.agent_id, "one");  // kept: the spool's seqs belong to it
  EXPECT_FALSE(running.etcd.enabled);  // kept: the maps' watcher and the servers' spools
  EXPECT_NE(ok.message.find("2 setting(s) need a restart"), std::string::npos) << ok.message;
  EXPECT_EQ(running.mmstats_globs.size(), 2u);
  EXPECT_EQ(loop.interval(), 2s);
  EXPECT_EQ(sender.options().timeout, 3s);
  EXPECT_EQ(sources.sources()[1].get(), v2);

  write_config("interval: [oops\n");
  ReloadOutcome bad = reload_agent({*cli, running, sources, sender, loop}, 6'000);
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.message.find(config_file_ + ":"), std::string::npos) << bad.message;
  EXPECT_EQ(loop.interval(), 2s);
  EXPECT_EQ(running.mmstats_globs.size(), 2u);
}

}  // namespace
}  // namespace statherd::agent
