// The source registry (agent/source_registry.h): every kind is wired through it alone.
#include <gtest/gtest.h>

#include <set>

#include "agent/source_registry.h"
#include "agent/source_set.h"

namespace statherd::agent {
namespace {

AgentConfig every_kind_on() {
  AgentConfig c;
  c.host = "h";
  c.mmstats_globs = {"/nonexistent/*.mmstats"};
  c.v2_globs = {"/nonexistent/*.statherd"};
  c.prom_multiproc_dirs = {"/nonexistent/prom"};
  c.scales_urls = {"http://127.0.0.1:9/status/"};
  c.prometheus_urls = {"http://127.0.0.1:9/metrics"};
  return c;
}

TEST(SourceRegistry, EachKindBuildsASourceOfItsOwnKindBothWays) {
  const AgentConfig c = every_kind_on();
  std::set<std::string> names, yaml_keys;
  for (const SourceKind* kind : source_kinds()) {
    SCOPED_TRACE(kind->name);
    EXPECT_TRUE(names.insert(kind->name).second);
    EXPECT_TRUE(yaml_keys.insert(kind->yaml_key).second);
    ASSERT_TRUE(kind->configured(c));
    for (bool one_shot : {false, true}) {
      auto source = kind->build(c, 0, one_shot);
      ASSERT_NE(source, nullptr);
      EXPECT_EQ(source->kind(), kind->name);
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"mmstats_v1", "statherd_v2", "prom_multiproc", "scales",
                                          "prometheus"}));
}

TEST(SourceRegistry, OnlyTheHttpKindsWaitOnTheNetwork) {
  const AgentConfig c = every_kind_on();
  for (const SourceKind* kind : source_kinds()) {
    const bool http = std::string(kind->name) == "scales" || std::string(kind->name) == "prometheus";
    EXPECT_EQ(kind->build(c, 0, false)->reads_local_files(), !http) << kind->name;
  }
}

TEST(SourceRegistry, SourceSetFollowsTheRegistryOrderAndWhatIsConfigured) {
  AgentConfig c = every_kind_on();
  SourceSet all(c, 0);
  ASSERT_EQ(all.sources().size(), source_kinds().size());
  for (size_t i = 0; i < source_kinds().size(); ++i)
    EXPECT_EQ(all.sources()[i]->kind(), source_kinds()[i]->name);
  c.prom_multiproc_dirs.clear();
  c.scales_urls.clear();
  c.prometheus_urls.clear();
  SourceSet files(c, 0);
  ASSERT_EQ(files.sources().size(), 2u);  // mmstats_v1 and statherd_v2 are always on
}

TEST(SourceRegistry, EachKindReadsItsOwnYamlSection) {
  YamlReader reader("agent.yaml", R"(mmstats: {globs: [/m/*]}
statherd_v2: {globs: [/v/*]}
prom_multiproc: {dirs: [/p]}
scales: {urls: ["http://127.0.0.1:1/"]}
prometheus: {urls: ["http://127.0.0.1:2/metrics"]}
)");
  AgentConfig c;
  read_agent_yaml(reader, c);
  ASSERT_TRUE(reader.errors().empty()) << reader.errors().front().to_string();
  EXPECT_EQ(c.mmstats_globs, std::vector<std::string>{"/m/*"});
  EXPECT_EQ(c.v2_globs, std::vector<std::string>{"/v/*"});
  EXPECT_EQ(c.prom_multiproc_dirs, std::vector<std::string>{"/p"});
  EXPECT_EQ(c.scales_urls, std::vector<std::string>{"http://127.0.0.1:1/"});
  EXPECT_EQ(c.prometheus_urls, std::vector<std::string>{"http://127.0.0.1:2/metrics"});
}

}  // namespace
}  // namespace statherd::agent
