// YAML config helpers: value parsers, positions of errors, unknown keys, nested prefixes.
#include "common/yaml_util.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace statherd {
namespace {

using std::chrono::milliseconds;

TEST(ParseDuration, AcceptsUnitsAndBareSeconds) {
  EXPECT_EQ(*parse_duration("10s"), milliseconds(10'000));
  EXPECT_EQ(*parse_duration("500ms"), milliseconds(500));
  EXPECT_EQ(*parse_duration("5m"), milliseconds(300'000));
  EXPECT_EQ(*parse_duration("1h"), milliseconds(3'600'000));
  EXPECT_EQ(*parse_duration("2d"), milliseconds(172'800'000));
  EXPECT_EQ(*parse_duration("30"), milliseconds(30'000));
  EXPECT_EQ(*parse_duration("1.5s"), milliseconds(1500));
  EXPECT_EQ(*parse_duration(" 10s "), milliseconds(10'000));
}

TEST(ParseDuration, RejectsNegativesGarbageAndOverflow) {
  for (const char* bad : {"-5s", "+5s", "", "s", "abc", "10x", "10 sec", "1.s", ".5s", "10s5",
                          "99999999999999999999s", "300000000000d", "nan", "inf"}) {
    auto r = parse_duration(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_FALSE(r.error().hint.empty()) << bad;
    }
  }
}

TEST(ParseDuration, ZeroOnlyWhenAllowed) {
  EXPECT_FALSE(parse_duration("0s").ok());
  EXPECT_FALSE(parse_duration("0.0001s").ok());  // rounds to 0 ms
  EXPECT_EQ(*parse_duration("0", true), milliseconds(0));
}

TEST(ParseBytes, BinaryMultiples) {
  EXPECT_EQ(*parse_bytes("4096"), 4096u);
  EXPECT_EQ(*parse_bytes("10B"), 10u);
  EXPECT_EQ(*parse_bytes("64KiB"), 64u * 1024);
  EXPECT_EQ(*parse_bytes("100k"), 100u * 1024);
  EXPECT_EQ(*parse_bytes("10MB"), 10u * 1024 * 1024);
  EXPECT_EQ(*parse_bytes("256MiB"), 256u * 1024 * 1024);
  EXPECT_EQ(*parse_bytes("1GiB"), 1024u * 1024 * 1024);
  EXPECT_EQ(*parse_bytes("2G"), 2ull * 1024 * 1024 * 1024);
  EXPECT_EQ(*parse_bytes("1.5K"), 1536u);
  EXPECT_EQ(*parse_bytes("18446744073709551615"), 18446744073709551615ull);
}

TEST(ParseBytes, RejectsGarbageNegativesAndOverflow) {
  for (const char* bad :
       {"-1", "", "MB", "10XB", "1e3", "18446744073709551616", "17179869184GiB", "1..5M"}) {
    EXPECT_FALSE(parse_bytes(bad).ok()) << bad;
  }
}

TEST(ParseHostPort, Forms) {
  auto a = parse_host_port("127.0.0.1:8470");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8470);
  auto b = parse_host_port("[::1]:2003");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 2003);
  auto c = parse_host_port("localhost:65535");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "localhost");
  for (const char* bad : {"localhost", "host:0", "host:65536", "host:", ":80", "::1:80", "[::1]",
                          "[::1]80", "host:80x", "host:-1"}) {
    EXPECT_FALSE(parse_host_port(bad).ok()) << bad;
  }
}

TEST(ConfigError, ToStringFormat) {
  ConfigError e{"agent.yaml", 3, 5, "graphite.address", "bad", "HOST:PORT"};
  EXPECT_EQ(e.to_string(), "agent.yaml:3:5: graphite.address: bad (allowed: HOST:PORT)");
  e.allowed.clear();
  EXPECT_EQ(e.to_string(), "agent.yaml:3:5: graphite.address: bad");
}

TEST(YamlReader, ReadsTypedValues) {
  YamlReader r("s.yaml",
               "interval: 10s\nname: web\nenabled: yes\nworkers: 4\nratio: 0.25\n"
               "spool: 64MiB\nglobs: [/tmp/*.mmstats, '/var/x/*']\n");
  ASSERT_TRUE(r.errors().empty());
  YAML::Node root = r.root();
  ASSERT_TRUE(root);
  milliseconds interval{0};
  std::string name;
  bool enabled = false;
  int64_t workers = 0;
  double ratio = 0;
  uint64_t spool = 0;
  std::vector<std::string> globs;
  EXPECT_TRUE(r.get_duration(root, "interval", interval));
  EXPECT_TRUE(r.get_string(root, "name", name));
  EXPECT_TRUE(r.get_bool(root, "enabled", enabled));
  EXPECT_TRUE(r.get_int(root, "workers", workers, 1, 64));
  EXPECT_TRUE(r.get_double(root, "ratio", ratio));
  EXPECT_TRUE(r.get_bytes(root, "spool", spool));
  EXPECT_TRUE(r.get_string_list(root, "globs", globs));
  r.check_keys(root, {"interval", "name", "enabled", "workers", "ratio", "spool", "globs"});
  EXPECT_TRUE(r.errors().empty());
  EXPECT_EQ(interval, milliseconds(10'000));
  EXPECT_EQ(name, "web");
  EXPECT_TRUE(enabled);
  EXPECT_EQ(workers, 4);
  EXPECT_EQ(ratio, 0.25);
  EXPECT_EQ(spool, 64u << 20);
  EXPECT_EQ(globs, (std::vector<std::string>{"/tmp/*.mmstats", "/var/x/*"}));
}

TEST(YamlReader, AbsentKeyLeavesDefault) {
  YamlReader r("s.yaml", "a: 1\n");
  milliseconds interval{1234};
  EXPECT_FALSE(r.get_duration(r.root(), "interval", interval));
  EXPECT_EQ(interval, milliseconds(1234));
  EXPECT_TRUE(r.errors().empty());
}

TEST(YamlReader, UnknownKeyReportedWithLineAndColumn) {
  YamlReader r("server.yaml",
               "listen: 127.0.0.1:8470\ngraphite:\n  address: h:2003\n  adress: x\n");
  YAML::Node root = r.root();
  r.check_keys(root, {"listen", "graphite"});
  YAML::Node g = r.get_map(root, "graphite");
  ASSERT_TRUE(g);
  r.check_keys(g, {"address", "prefix"}, "graphite");
  ASSERT_EQ(r.errors().size(), 1u);
  const ConfigError& e = r.errors()[0];
  EXPECT_EQ(e.line, 4);
  EXPECT_EQ(e.column, 3);
  EXPECT_EQ(e.key, "graphite.adress");
  EXPECT_EQ(e.to_string(),
            "server.yaml:4:3: graphite.adress: unknown key (allowed: address, prefix)");
}

TEST(YamlReader, WrongTypesAreErrorsAtTheValue) {
  YamlReader r("a.yaml",
               "workers: many\nenabled: maybe\nname: [1, 2]\nglobs: one\nlimit: 900\n"
               "ratio: abc\nsub: 5\nlist: [a, {b: c}]\n");
  YAML::Node root = r.root();
  int64_t workers = 7, limit = 0;
  bool enabled = false;
  std::string name = "keep";
  std::vector<std::string> globs, list;
  double ratio = 0;
  EXPECT_FALSE(r.get_int(root, "workers", workers, 1, 64));
  EXPECT_FALSE(r.get_bool(root, "enabled", enabled));
  EXPECT_FALSE(r.get_string(root, "name", name));
  EXPECT_FALSE(r.get_string_list(root, "globs", globs));
  EXPECT_FALSE(r.get_int(root, "limit", limit, 1, 100));
  EXPECT_FALSE(r.get_double(root, "ratio", ratio));
  EXPECT_FALSE(r.get_map(root, "sub"));
  EXPECT_FALSE(r.get_string_list(root, "list", list));
  ASSERT_EQ(r.errors().size(), 8u);
  EXPECT_EQ(workers, 7);
  EXPECT_EQ(name, "keep");
  const auto& e = r.errors();
  EXPECT_EQ(e[0].to_string(),
            "a.yaml:1:10: workers: expected an integer, got \"many\" "
            "(allowed: an integer from 1 to 64)");
  EXPECT_EQ(e[1].line, 2);
  EXPECT_EQ(e[1].column, 10);
  EXPECT_EQ(e[2].key, "name");
  EXPECT_EQ(e[2].line, 3);
  EXPECT_EQ(e[3].key, "globs");
  EXPECT_EQ(e[4].key, "limit");
  EXPECT_EQ(e[4].line, 5);
  EXPECT_EQ(e[5].key, "ratio");
  EXPECT_EQ(e[6].key, "sub");
  EXPECT_EQ(e[7].key, "list[1]");
  EXPECT_EQ(e[7].line, 8);
  EXPECT_EQ(e[7].column, 11);
}

TEST(YamlReader, BadDurationsAndSizesCarryKeyAndPosition) {
  YamlReader r("a.yaml", "graphite:\n  interval: -5s\n  flush: 10 parsecs\n  queue: lots\n");
  YAML::Node g = r.get_map(r.root(), "graphite");
  milliseconds interval{0}, flush{0};
  uint64_t queue = 0;
  EXPECT_FALSE(r.get_duration(g, "interval", interval, "graphite"));
  EXPECT_FALSE(r.get_duration(g, "flush", flush, "graphite"));
  EXPECT_FALSE(r.get_bytes(g, "queue", queue, "graphite"));
  ASSERT_EQ(r.errors().size(), 3u);
  EXPECT_EQ(r.errors()[0].key, "graphite.interval");
  EXPECT_EQ(r.errors()[0].line, 2);
  EXPECT_EQ(r.errors()[0].column, 13);
  EXPECT_NE(r.errors()[0].allowed.find("10s"), std::string::npos);
  EXPECT_EQ(r.errors()[1].key, "graphite.flush");
  EXPECT_EQ(r.errors()[2].key, "graphite.queue");
  EXPECT_EQ(r.errors()[2].line, 4);
}

TEST(YamlReader, SyntaxErrorBecomesErrorWithPosition) {
  YamlReader r("bad.yaml", "a: 1\nb: [1, 2\nc: 3\n");
  ASSERT_EQ(r.errors().size(), 1u);
  const ConfigError& e = r.errors()[0];
  EXPECT_EQ(e.file, "bad.yaml");
  EXPECT_GT(e.line, 0);
  EXPECT_NE(e.message.find("YAML syntax error"), std::string::npos);
  EXPECT_FALSE(r.root());
}

TEST(YamlReader, SyntaxErrorReportsTheOffendingLine) {
  YamlReader r("bad.yaml", "a: 1\nb: c: d\n");
  ASSERT_EQ(r.errors().size(), 1u);
  EXPECT_EQ(r.errors()[0].to_string(), "bad.yaml:2:5: YAML syntax error: illegal map value");
}

TEST(YamlReader, EmptyDocumentIsAnEmptyMapping) {
  YamlReader r("empty.yaml", "");
  EXPECT_TRUE(r.errors().empty());
  ASSERT_TRUE(r.root());
  EXPECT_TRUE(r.root().IsMap());
}

TEST(YamlReader, NonMappingTopLevelIsAnError) {
  YamlReader r("list.yaml", "- a\n- b\n");
  ASSERT_EQ(r.errors().size(), 1u);
  EXPECT_EQ(r.errors()[0].line, 1);
  EXPECT_FALSE(r.root());
  std::string s;
  EXPECT_FALSE(r.get_string(r.root(), "a", s));  // getters on an invalid root are harmless
  r.check_keys(r.root(), {});
  EXPECT_EQ(r.errors().size(), 1u);
}

TEST(YamlReader, DuplicateKeyIsReported) {
  YamlReader r("d.yaml", "a: 1\na: 2\n");
  r.check_keys(r.root(), {"a"});
  ASSERT_EQ(r.errors().size(), 1u);
  EXPECT_EQ(r.errors()[0].line, 2);
}

TEST(YamlReader, MissingFileIsAnError) {
  YamlReader r("/nonexistent/statherd.yaml");
  ASSERT_EQ(r.errors().size(), 1u);
  EXPECT_EQ(r.errors()[0].file, "/nonexistent/statherd.yaml");
  EXPECT_FALSE(r.root());
}

}  // namespace
}  // namespace statherd
