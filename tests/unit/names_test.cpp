// Graphite name sanitizing and glob matching.
#include "common/names.h"

#include <gtest/gtest.h>

#include <string>

namespace statherd {
namespace {

TEST(Names, ComponentKeepsSafeBytes) {
  EXPECT_EQ(sanitize_graphite_component("web-01_A9"), "web-01_A9");
}

TEST(Names, ComponentReplacesEveryUnsafeByte) {
  EXPECT_EQ(sanitize_graphite_component("a b"), "a_b");
  EXPECT_EQ(sanitize_graphite_component("line\nbreak\r"), "line_break_");
  EXPECT_EQ(sanitize_graphite_component("k;tag=v"), "k_tag_v");
  EXPECT_EQ(sanitize_graphite_component("dotted.name"), "dotted_name");
  EXPECT_EQ(sanitize_graphite_component("tab\tnul"), "tab_nul");
  EXPECT_EQ(sanitize_graphite_component(std::string("a\0b", 3)), "a_b");
  EXPECT_EQ(sanitize_graphite_component("\x7f\x01"), "__");
  // UTF-8 "é" is two bytes; each becomes '_'.
  EXPECT_EQ(sanitize_graphite_component("caf\xc3\xa9"), "caf__");
  EXPECT_EQ(sanitize_graphite_component("/tmp/x*?[]{}"), "_tmp_x______");
}

TEST(Names, EmptyComponentBecomesUnderscore) {
  EXPECT_EQ(sanitize_graphite_component(""), "_");
}

TEST(Names, PathSanitizesEachComponentAndKeepsDots) {
  EXPECT_EQ(sanitize_graphite_path("statherd.my app.req;x=1.rate"), "statherd.my_app.req_x_1.rate");
  EXPECT_EQ(sanitize_graphite_path("a..b"), "a._.b");
  EXPECT_EQ(sanitize_graphite_path(".a."), "_.a._");
  EXPECT_EQ(sanitize_graphite_path(""), "_");
  EXPECT_EQ(sanitize_graphite_path("x\ny.z"), "x_y.z");
}

TEST(Names, TagFollowsComponentRules) {
  EXPECT_EQ(sanitize_graphite_tag("eu-west 1"), "eu-west_1");
  EXPECT_EQ(sanitize_graphite_tag("a;b=c"), "a_b_c");
  EXPECT_EQ(sanitize_graphite_tag(""), "_");
}

TEST(Names, SplitDots) {
  auto parts = split_dots("a..b.");
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0], "a");
  EXPECT_EQ(parts[1], "");
  EXPECT_EQ(parts[2], "b");
  EXPECT_EQ(parts[3], "");
  EXPECT_EQ(split_dots("").size(), 1u);
}

TEST(Names, GlobStarAndQuestion) {
  EXPECT_TRUE(graphite_component_match("*", "anything"));
  EXPECT_TRUE(graphite_component_match("*", ""));
  EXPECT_TRUE(graphite_component_match("req*", "requests"));
  EXPECT_TRUE(graphite_component_match("*_rate", "m1_rate"));
  EXPECT_TRUE(graphite_component_match("m*_r*e", "m15_rate"));
  EXPECT_FALSE(graphite_component_match("m*_x", "m15_rate"));
  EXPECT_TRUE(graphite_component_match("p9?", "p99"));
  EXPECT_FALSE(graphite_component_match("p9?", "p999"));
  EXPECT_TRUE(graphite_component_match("exact", "exact"));
  EXPECT_FALSE(graphite_component_match("exact", "exactly"));
  // Many stars against a long non-matching text stays fast (linear backtracking).
  EXPECT_FALSE(graphite_component_match("*a*a*a*a*a*a*a*a*b", std::string(5000, 'a')));
}

TEST(Names, GlobCharacterSets) {
  EXPECT_TRUE(graphite_component_match("web[123]", "web2"));
  EXPECT_FALSE(graphite_component_match("web[123]", "web4"));
  EXPECT_TRUE(graphite_component_match("web[0-9][0-9]", "web07"));
  EXPECT_FALSE(graphite_component_match("web[0-9]", "webx"));
  EXPECT_TRUE(graphite_component_match("web[a-cx]", "webx"));
  EXPECT_TRUE(graphite_component_match("web[!0-9]", "webx"));
  EXPECT_FALSE(graphite_component_match("web[!0-9]", "web5"));
  EXPECT_TRUE(graphite_component_match("web[", "web["));  // unclosed: literal
  EXPECT_TRUE(graphite_component_match("*[0-9]", "host12"));
}

TEST(Names, GlobBraces) {
  EXPECT_TRUE(graphite_component_match("{p50,p99}", "p99"));
  EXPECT_FALSE(graphite_component_match("{p50,p99}", "p90"));
  EXPECT_TRUE(graphite_component_match("m{1,5,15}_rate", "m15_rate"));
  EXPECT_TRUE(graphite_component_match("{web*,db?}", "db1"));
  EXPECT_TRUE(graphite_component_match("{a,{b,c}d}", "cd"));
  EXPECT_TRUE(graphite_component_match("x{,y}", "x"));
  EXPECT_TRUE(graphite_component_match("{a", "{a"));  // unclosed: literal
}

TEST(Names, PathMatchIsComponentByComponent) {
  EXPECT_TRUE(graphite_path_match("statherd.*.requests.rate", "statherd.web.requests.rate"));
  EXPECT_FALSE(graphite_path_match("statherd.*.rate", "statherd.web.requests.rate"));
  EXPECT_FALSE(graphite_path_match("statherd.*", "statherd.web.requests"));  // '*' stays in one
  EXPECT_TRUE(graphite_path_match("statherd.{web,db}.hosts.h[0-9].*.p9?",
                                  "statherd.db.hosts.h3.latency.p99"));
  EXPECT_FALSE(graphite_path_match("a.b", "a.b.c"));
  EXPECT_TRUE(graphite_path_match("a.{b.c,d}", "a.b.c"));  // braces expand before splitting
  EXPECT_TRUE(graphite_path_match("a.{b.c,d}", "a.d"));
}

TEST(Names, HugeBraceExpansionIsRefused) {
  std::string pattern;
  for (int i = 0; i < 20; ++i) pattern += "{a,b}";  // 2^20 alternatives
  EXPECT_FALSE(graphite_component_match(pattern, std::string(20, 'a')));
}

}  // namespace
}  // namespace statherd
