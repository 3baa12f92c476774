#include "server/graphite_tags.h"

#include <gtest/gtest.h>

namespace statherd::server {
namespace {

TagQuery compile(std::vector<std::string> exprs) {
  auto q = TagQuery::compile(exprs);
  EXPECT_TRUE(q) << (q ? "" : q.error().message);
  return std::move(*q);
}

TEST(TaggedPath, ParsesAsGraphiteWebsTaggedSeries) {
  EXPECT_EQ(*parse_tagged_path("a.b.c"), (TagMap{{"name", "a.b.c"}}));
  EXPECT_EQ(*parse_tagged_path("a.b;dc=east;x=1=2"),
            (TagMap{{"name", "a.b"}, {"dc", "east"}, {"x", "1=2"}}));
  // the metric is the name tag whatever a segment says; leading '~' stripped off the name
  EXPECT_EQ(parse_tagged_path("a;name=zz")->at("name"), "a");
  EXPECT_EQ(parse_tagged_path("~~a")->at("name"), "a");
  for (const char* bad : {"", ";a=b", "a;b", "a;=b", "a;b=", "a;b=~c", "a;b!=c", "a;b^x=c", "~"})
    EXPECT_FALSE(parse_tagged_path(bad)) << bad;
}

TEST(TaggedPath, FormatsSegmentsSortedAsStrings) {
  // ";a-b=1" < ";a1=1" < ";a=1": not key order
  EXPECT_EQ(format_tagged_path({{"name", "m"}, {"a", "1"}, {"a-b", "1"}, {"a1", "1"}}),
            "m;a-b=1;a1=1;a=1");
  EXPECT_EQ(format_tagged_path(*parse_tagged_path("m;z=1;a=2")), "m;a=2;z=1");
}

TEST(TagQuery, OperatorsAsTheTagDatabase) {
  const TagMap east{{"name", "cpu"}, {"dc", "east"}};
  const TagMap bare{{"name", "cpu"}};
  EXPECT_TRUE(compile({"name=cpu", "dc=east"}).matches(east));
  EXPECT_FALSE(compile({"name=cpu", "dc=east"}).matches(bare));
  EXPECT_TRUE(compile({"name=cpu", "dc!=west"}).matches(bare));  // "" != "west"
  EXPECT_FALSE(compile({"name=cpu", "dc!=east"}).matches(east));
  EXPECT_TRUE(compile({"name=cpu", "dc="}).matches(bare));  // = "" : no such tag
  EXPECT_FALSE(compile({"name=cpu", "dc="}).matches(east));
  EXPECT_TRUE(compile({"name=cpu", "dc!="}).matches(east));  // has the tag
  EXPECT_FALSE(compile({"name=cpu", "dc!="}).matches(bare));
  // regular expressions are anchored at the start, not the end
  EXPECT_TRUE(compile({"dc=~ea"}).matches(east));
  EXPECT_FALSE(compile({"dc=~ast"}).matches(east));
  EXPECT_TRUE(compile({"dc=~.*st"}).matches(east));
  EXPECT_TRUE(compile({"dc=~^e"}).matches(east));
  EXPECT_TRUE(compile({"dc=~e|w"}).matches(east));  // ^(e|w), not ^e|w
  EXPECT_FALSE(compile({"name=cpu", "dc!=~e"}).matches(east));
  EXPECT_TRUE(compile({"name=cpu", "dc!=~e"}).matches(bare));
}

TEST(TagQuery, ErrorsNameTheExpression) {
  for (const char* bad : {"dc", "=x", "dc!x", "a;b=c", "dc=~("}) {
    auto q = TagQuery::compile({"name=cpu", bad});
    ASSERT_FALSE(q) << bad;
    EXPECT_NE(q.error().message.find(std::string(bad).substr(0, 2)), std::string::npos)
        << q.error().message;
  }
  // every expression matching "" would match every series
  for (std::vector<std::string> all_empty :
       {std::vector<std::string>{}, {"dc!=x"}, {"dc="}, {"dc=~.*", "x!=~y"}}) {
    auto q = TagQuery::compile(all_empty);
    ASSERT_FALSE(q);
    EXPECT_NE(q.error().message.find("must not match the empty value"), std::string::npos);
  }
  EXPECT_FALSE(TagQuery::compile({"dc=~" + std::string(600, 'a')}));
}

// The expressions that do not match "" give the candidates from an index of values.
TEST(TagQuery, RequirementsAreTheExpressionsThatNeedAValue) {
  auto q = compile({"dc=east", "name=~a\\.", "x!=y", "z=", "q!="});
  const auto& r = q.requirements();
  ASSERT_EQ(r.size(), 3u);  // dc=east, name=~a\., q!= (x!=y and z= match "")
  EXPECT_EQ(r[0].tag, "dc");
  EXPECT_TRUE(r[0].accepts("east"));
  EXPECT_FALSE(r[0].accepts("west"));
  EXPECT_EQ(r[1].tag, "name");
  EXPECT_TRUE(r[1].accepts("a.b"));
  EXPECT_FALSE(r[1].accepts("ab"));
  EXPECT_EQ(r[2].tag, "q");
  EXPECT_TRUE(r[2].accepts("1"));
  auto moved = std::move(q);  // the requirements still read the moved expressions
  EXPECT_TRUE(moved.requirements()[1].accepts("a.c"));
  EXPECT_EQ(compile({"name=a", "dc=x"}).tags(), (std::vector<std::string>{"name", "dc"}));
}

TEST(TagFilter, AnchoredSearch) {
  auto f = TagFilter::compile("d");
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->matches("dc"));
  EXPECT_FALSE(f->matches("odd"));
  EXPECT_FALSE(TagFilter::compile("["));
}

}  // namespace
}  // namespace statherd::server
