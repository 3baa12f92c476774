// The `etcd:` section (common/etcd_config.h) as statherd-server reads it: the documented
// example in config/server.yaml, every key's errors at their file:line:col, the defaults
// (id = host name, advertise from listen), and a change needing a restart.
#include "common/etcd_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "server/server_config.h"
#include "server/server_reload.h"

namespace statherd {
namespace {

using namespace std::chrono_literals;
using server::ServerConfig;

Status load(const std::string& text, ServerConfig& c) {
  return server::load_server_config_text("s.yaml", text, c);
}

std::string error_of(const std::string& text) {
  ServerConfig c;
  Status s = load(text, c);
  return s ? std::string("(no error)") : s.error().message;
}

// config/server.yaml's commented-out etcd section, uncommented.
std::string documented_section() {
  std::ifstream in(std::string(STATHERD_SOURCE_DIR) + "/config/server.yaml");
  std::string line, out;
  bool in_section = false;
  while (std::getline(in, line)) {
    if (line == "#etcd:") in_section = true;
    if (!in_section) continue;
    if (line.empty() || line[0] != '#') break;
    out += line.substr(1) + "\n";
  }
  return out;
}

TEST(EtcdConfig, AbsentMeansNoCluster) {
  ServerConfig c;
  ASSERT_TRUE(server::load_server_config_file(
      std::string(STATHERD_SOURCE_DIR) + "/config/server.yaml", c));
  EXPECT_FALSE(c.etcd.enabled);
}

TEST(EtcdConfig, TheDocumentedSectionParses) {
  const std::string section = documented_section();
  ASSERT_NE(section.find("endpoints:"), std::string::npos) << section;
  ServerConfig c;
  Status s = load(section, c);
  ASSERT_TRUE(s) << s.error().to_string() << "\n" << section;
  EXPECT_TRUE(c.etcd.enabled);
  ASSERT_EQ(c.etcd.endpoints.size(), 1u);
  EXPECT_EQ(c.etcd.endpoints[0].host, "127.0.0.1");
  EXPECT_EQ(c.etcd.endpoints[0].port, 2379);
  EXPECT_EQ(c.etcd.cluster, "default");
  EXPECT_EQ(c.etcd.prefix(), "/statherd/default/");
  EXPECT_EQ(c.etcd.id, "server-1");
  EXPECT_EQ(c.etcd.advertise, "http://10.0.0.5:8470");
  EXPECT_EQ(c.etcd.lease_ttl, 10s);
  EXPECT_EQ(c.etcd.shards, 64u);
  EXPECT_EQ(c.etcd.replicas, 2u);
  EXPECT_EQ(c.etcd.dead_after, 60s);
  // The documented values are the defaults.
  const cluster::EtcdSettings defaults;
  EXPECT_EQ(c.etcd.cluster, defaults.cluster);
  EXPECT_EQ(c.etcd.lease_ttl, defaults.lease_ttl);
  EXPECT_EQ(c.etcd.shards, defaults.shards);
  EXPECT_EQ(c.etcd.replicas, defaults.replicas);
  EXPECT_EQ(c.etcd.dead_after, defaults.dead_after);
}

TEST(EtcdConfig, ShardsReplicasAndDeadAfter) {
  ServerConfig c;
  ASSERT_TRUE(load("etcd:\n  endpoints: [http://127.0.0.1:2379]\n  shards: 4096\n"
                   "  replicas: 3\n  dead_after: 5m\n  lease_ttl: 20s\n", c));
  EXPECT_EQ(c.etcd.shards, 4096u);
  EXPECT_EQ(c.etcd.replicas, 3u);
  EXPECT_EQ(c.etcd.dead_after, 5min);
  const std::string ok = "etcd:\n  endpoints: [http://127.0.0.1:2379]\n";
  EXPECT_NE(error_of(ok + "  shards: 0\n").find("s.yaml:3:11: etcd.shards: 0 is out of range"),
            std::string::npos) << error_of(ok + "  shards: 0\n");
  EXPECT_NE(error_of(ok + "  shards: 4097\n").find("etcd.shards"), std::string::npos);
  EXPECT_NE(error_of(ok + "  replicas: 0\n").find("etcd.replicas"), std::string::npos);
  EXPECT_NE(error_of(ok + "  replicas: 17\n").find("etcd.replicas"), std::string::npos);
  EXPECT_NE(error_of(ok + "  replicas: two\n").find("etcd.replicas: expected an integer"),
            std::string::npos);
  // dead_after under the lease would drop a live server between two renewals.
  EXPECT_NE(error_of(ok + "  lease_ttl: 30s\n  dead_after: 20s\n")
                .find("s.yaml:4:15: etcd.dead_after: out of range"),
            std::string::npos);
  EXPECT_NE(error_of(ok + "  dead_after: 2d\n").find("etcd.dead_after"), std::string::npos);
}

TEST(EtcdConfig, EndpointsAsAListOrACommaString) {
  ServerConfig a, b;
  ASSERT_TRUE(load("etcd:\n  endpoints: [http://127.0.0.1:2379, 'http://[::1]:2380']\n", a));
  ASSERT_TRUE(load("etcd:\n  endpoints: http://127.0.0.1:2379,http://[::1]:2380\n", b));
  for (const ServerConfig* c : {&a, &b}) {
    ASSERT_EQ(c->etcd.endpoints.size(), 2u);
    EXPECT_EQ(c->etcd.endpoints[1].host, "::1");
    EXPECT_EQ(c->etcd.endpoints[1].port, 2380);
    EXPECT_EQ(c->etcd.endpoints_text, "http://127.0.0.1:2379,http://[::1]:2380");
  }
  ServerConfig d;
  ASSERT_TRUE(load("etcd:\n  endpoints: [http://127.0.0.1:2379]\n  cluster: prod-eu.1\n", d));
  EXPECT_EQ(d.etcd.prefix(), "/statherd/prod-eu.1/");
  EXPECT_TRUE(d.etcd.id.empty());  // filled with the host name by parse_server_command_line
}

TEST(EtcdConfig, EachBadKeyIsReportedAtItsPosition) {
  EXPECT_NE(error_of("listen: 127.0.0.1:1\netcd:\n  cluster: a\n")
                .find("s.yaml:3:3: etcd.endpoints: missing"),
            std::string::npos)
      << error_of("listen: 127.0.0.1:1\netcd:\n  cluster: a\n");
  EXPECT_NE(error_of("etcd:\n").find("etcd.endpoints: missing"), std::string::npos);
  EXPECT_NE(error_of("etcd:\n  endpoints: https://127.0.0.1:2379\n")
                .find("s.yaml:2:14: etcd.endpoints: etcd endpoint \"https://127.0.0.1:2379\": "
                      "https is not supported"),
            std::string::npos);
  EXPECT_NE(error_of("etcd:\n  endpoints: ['http://a:1,http://b:2']\n").find("holds a comma"),
            std::string::npos);
  EXPECT_NE(error_of("etcd:\n  endpoints: []\n").find("no etcd endpoint given"),
            std::string::npos);
  const std::string ok = "etcd:\n  endpoints: [http://127.0.0.1:2379]\n";
  EXPECT_NE(error_of(ok + "  cluster: a/b\n").find("s.yaml:3:12: etcd.cluster: not a valid name"),
            std::string::npos);
  EXPECT_NE(error_of(ok + "  cluster: ..\n").find("etcd.cluster: not a valid name"),
            std::string::npos);
  EXPECT_NE(error_of(ok + "  id: " + std::string(65, 'a') + "\n").find("etcd.id: not a valid"),
            std::string::npos);
  EXPECT_NE(error_of(ok + "  lease_ttl: 1s\n").find("s.yaml:3:14: etcd.lease_ttl: out of range"),
            std::string::npos);
  EXPECT_NE(error_of(ok + "  lease_ttl: 2500ms\n").find("etcd.lease_ttl: out of range"),
            std::string::npos);
  EXPECT_NE(error_of(ok + "  lease_ttl: 6m\n").find("etcd.lease_ttl: out of range"),
            std::string::npos);
  EXPECT_NE(error_of(ok + "  advertise: http://0.0.0.0:8470\n").find("wildcard"),
            std::string::npos);
  EXPECT_NE(error_of(ok + "  advertise: 10.0.0.5:8470\n").find("expected http://HOST:PORT"),
            std::string::npos);
  EXPECT_NE(error_of(ok + "  advertise: http://10.0.0.5:8470/ingest\n").find("address only"),
            std::string::npos);
  EXPECT_NE(error_of(ok + "  advertise: \"http://h\\xffx:80\"\n").find("not a host name"),
            std::string::npos)
      << error_of(ok + "  advertise: \"http://h\\xffx:80\"\n");
  EXPECT_NE(error_of(ok + "  advertise: 'http://a\"b:80'\n").find("not a host name"),
            std::string::npos);
  EXPECT_NE(error_of(ok + "  prefix: /x/\n").find("s.yaml:3:3: etcd.prefix"), std::string::npos)
      << error_of(ok + "  prefix: /x/\n");
  EXPECT_NE(error_of("etcd: [a]\n").find("expected a mapping"), std::string::npos);
  // Every error of the section at once, in file order.
  const std::string both = error_of("etcd:\n  endpoints: ftp://x\n  lease_ttl: 0s\n");
  EXPECT_LT(both.find("etcd.endpoints"), both.find("etcd.lease_ttl")) << both;
}

TEST(EtcdConfig, AnAgentDoesNotTakeTheServersKeys) {
  YamlReader r("a.yaml", "etcd:\n  endpoints: [http://127.0.0.1:2379]\n  id: x\n");
  cluster::EtcdSettings s;
  cluster::read_etcd_section(r, r.root(), s, /*server=*/false);
  ASSERT_EQ(r.errors().size(), 1u);
  EXPECT_EQ(r.errors()[0].key, "etcd.id");
  EXPECT_TRUE(s.enabled);
  EXPECT_EQ(s.endpoints.size(), 1u);
}

TEST(EtcdConfig, TheIdDefaultsToTheHostName) {
  char dir_template[] = "/tmp/statherd-etcdcfg-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  std::ofstream(dir + "/token") << "secret\n";
  std::ofstream(dir + "/s.yaml") << "token_file: " << dir << "/token\nstate_dir: \"\"\n"
                                 << "etcd:\n  endpoints: [http://127.0.0.1:2379]\n";
  auto cmd = server::parse_server_command_line({"--config", dir + "/s.yaml"});
  ASSERT_TRUE(cmd) << cmd.error().to_string();
  char name[256] = {};
  ASSERT_EQ(::gethostname(name, sizeof name - 1), 0);
  EXPECT_EQ(cmd->config.etcd.id, name);
  EXPECT_EQ(cmd->config.etcd.advertise, "http://127.0.0.1:8470");  // from listen
  std::ofstream(dir + "/s.yaml") << "token_file: " << dir << "/token\nstate_dir: \"\"\n"
                                 << "etcd:\n  endpoints: [http://127.0.0.1:2379]\n  id: s7\n";
  cmd = server::parse_server_command_line({"--config", dir + "/s.yaml"});
  ASSERT_TRUE(cmd) << cmd.error().to_string();
  EXPECT_EQ(cmd->config.etcd.id, "s7");
  std::remove((dir + "/s.yaml").c_str());
  std::remove((dir + "/token").c_str());
  ::rmdir(dir.c_str());
}

TEST(EtcdConfig, DefaultAdvertiseFollowsListen) {
  using cluster::default_advertise;
  EXPECT_EQ(default_advertise("127.0.0.1", 8470, "h1"), "http://127.0.0.1:8470");
  EXPECT_EQ(default_advertise("0.0.0.0", 8470, "h1"), "http://h1:8470");
  EXPECT_EQ(default_advertise("::", 9000, "h1"), "http://h1:9000");
  EXPECT_EQ(default_advertise("::1", 9000, "h1"), "http://[::1]:9000");
  EXPECT_TRUE(cluster::check_advertise_url(default_advertise("::1", 9000, "h1")));
  EXPECT_TRUE(cluster::check_advertise_url("http://h1:8470"));
}

TEST(EtcdConfig, HostsAreNamesOrAddresses) {
  EXPECT_TRUE(cluster::valid_host("server-1.example.net"));
  EXPECT_TRUE(cluster::valid_host("10.0.0.5"));
  EXPECT_TRUE(cluster::valid_host("::1"));
  EXPECT_TRUE(cluster::valid_host("fe80::1"));
  EXPECT_TRUE(cluster::valid_host("host."));
  EXPECT_FALSE(cluster::valid_host(""));
  EXPECT_FALSE(cluster::valid_host("."));
  EXPECT_FALSE(cluster::valid_host("a..b"));
  EXPECT_FALSE(cluster::valid_host("a b"));
  EXPECT_FALSE(cluster::valid_host("a\"b"));
  EXPECT_FALSE(cluster::valid_host("h\xffx"));
  EXPECT_FALSE(cluster::valid_host("::g"));
  EXPECT_FALSE(cluster::valid_host(std::string(64, 'a')));
  EXPECT_EQ(etcd::printable("a\xff\n\\b"), "a\\xff\\x0a\\x5cb");
  EXPECT_FALSE(cluster::check_advertise_url(cluster::default_advertise("0.0.0.0", 1, "x y")));
}

TEST(EtcdConfig, NamesAreOneKeySegment) {
  EXPECT_TRUE(cluster::valid_name("server-1"));
  EXPECT_TRUE(cluster::valid_name("a.b_c-D9"));
  EXPECT_FALSE(cluster::valid_name(""));
  EXPECT_FALSE(cluster::valid_name("."));
  EXPECT_FALSE(cluster::valid_name(".."));
  EXPECT_FALSE(cluster::valid_name("a/b"));
  EXPECT_FALSE(cluster::valid_name("a b"));
  EXPECT_FALSE(cluster::valid_name(std::string("a\0b", 3)));
  EXPECT_FALSE(cluster::valid_name(std::string(65, 'x')));
  EXPECT_TRUE(cluster::valid_name(std::string(64, 'x')));
}

TEST(EtcdConfig, AChangeNeedsARestart) {
  ServerConfig a, b;
  ASSERT_TRUE(load("etcd:\n  endpoints: [http://127.0.0.1:2379]\n  id: s1\n", a));
  ASSERT_TRUE(load("etcd:\n  endpoints: [http://127.0.0.1:2379]\n  id: s2\n", b));
  auto kept = server::restart_only_changes(a, b, nullptr);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_NE(kept[0].find("etcd: "), std::string::npos);
  EXPECT_NE(kept[0].find("-> endpoints=http://127.0.0.1:2379,cluster=default,id=s2,"), std::string::npos)
      << kept[0];
  EXPECT_NE(kept[0].find("needs a restart; keeping"), std::string::npos) << kept[0];
  EXPECT_TRUE(server::restart_only_changes(a, a, nullptr).empty());
  EXPECT_EQ(server::restart_only_changes(ServerConfig{}, a, nullptr).size(), 1u);
  EXPECT_EQ(server::merge_reloadable(ServerConfig{}, a).etcd.enabled, false);
}

}  // namespace
}  // namespace statherd
