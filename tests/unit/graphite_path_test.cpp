#include "server/sinks/graphite_naming.h"

#include <gtest/gtest.h>

namespace statherd::server {
namespace {

SeriesPoint point(Level level, std::string metric, std::string stat) {
  SeriesPoint p;
  p.level = level;
  p.app = "web";
  p.host = "h1";
  p.pid = 42;
  p.metric = std::move(metric);
  p.stat = std::move(stat);
  return p;
}

TEST(GraphitePath, AppLevelKeepsMetricDots) {
  EXPECT_EQ(graphite_path(point(Level::App, "requests.count", "rate"), "statherd"),
            "statherd.web.requests.count.rate");
}

TEST(GraphitePath, HostAndProcessLevels) {
  EXPECT_EQ(graphite_path(point(Level::Host, "queue", "p99"), "statherd"),
            "statherd.web.hosts.h1.queue.p99");
  EXPECT_EQ(graphite_path(point(Level::Process, "queue", "last"), "statherd"),
            "statherd.web.hosts.h1.pids.42.queue.last");
}

TEST(GraphitePath, TagsBecomeComponentsBeforeStat) {
  SeriesPoint p = point(Level::App, "req", "count");
  p.tags = {{"method", "GET"}, {"status", "200"}};
  EXPECT_EQ(graphite_path(p, "statherd"), "statherd.web.req.method.GET.status.200.count");
}

// Carbon stores a tagged name in Graphite's canonical form (the ";k=v" strings sorted) and
// graphite-web's tag database answers that form: the sink and the store must write it so.
TEST(GraphitePath, TaggedFormIsGraphitesCanonicalOrder) {
  SeriesPoint p = point(Level::App, "jobs", "rate");
  p.tags = {{"dc", "east"}, {"dc2", "x"}, {"dc-zone", "z"}};  // key order: dc, dc-zone, dc2
  EXPECT_EQ(graphite_tagged_path(p, "statherd"), "statherd.web.jobs.rate;dc-zone=z;dc2=x;dc=east");
  // "name" is Graphite's own tag (the metric): a label of that name is kept as name_
  p.tags = {{"name", "lab"}, {"room", "a"}};
  EXPECT_EQ(graphite_tagged_path(p, "statherd"), "statherd.web.jobs.rate;name_=lab;room=a");
}

TEST(GraphitePath, DottedAndEmptyPrefix) {
  EXPECT_EQ(graphite_path(point(Level::App, "m", "sum"), "dc1.statherd"), "dc1.statherd.web.m.sum");
  EXPECT_EQ(graphite_path(point(Level::App, "m", "sum"), ""), "web.m.sum");
}

TEST(GraphitePath, HostileNamesNeverMakeASecondLineOrATag) {
  SeriesPoint p = point(Level::Host, "evil name\nstatherd.x 1 2\n;k=v", "co unt");
  p.app = "a;b=c";
  p.host = "h\r\n";
  p.tags = {{"k;=", "v\n v"}};
  std::string path = graphite_path(p, "statherd");
  EXPECT_EQ(path.find_first_of(" \n\r\t;="), std::string::npos) << path;
  EXPECT_EQ(path.find(".."), std::string::npos) << path;
  EXPECT_TRUE(path.starts_with("statherd.a_b_c.hosts.h__."));
  EXPECT_TRUE(path.ends_with(".k__.v__v.co_unt"));
}

TEST(GraphitePath, EmptyComponentsBecomeUnderscore) {
  SeriesPoint p = point(Level::App, "a..b", "");
  p.app = "";
  EXPECT_EQ(graphite_path(p, "statherd"), "statherd._.a._.b._");
}

}  // namespace
}  // namespace statherd::server
