// Distinct series that sanitize to one Graphite path are reported (log + self-metric), once.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include "server/graphite_path.h"
#include "server/sinks/graphite.h"
#include "rollup_test_util.h"

namespace statherd::server {
namespace {

SeriesPoint point(const std::string& app, const std::string& metric, const std::string& stat) {
  SeriesPoint p;
  p.app = app;
  p.metric = metric;
  p.stat = stat;
  p.value = 1;
  return p;
}

TEST(PathCollisions, DistinctSeriesWithOnePathAreReportedOnce) {
  std::vector<SeriesPoint> points = {point("a.p.p", "req", "count"), point("a_p_p", "req", "count"),
                                     point("web", "req time", "count"),
                                     point("web", "req_time", "count"),
                                     point("web", "req_time", "rate")};
  PathCollisions c;
  for (int interval = 0; interval < 3; ++interval) {
    std::vector<std::string> paths;
    for (const auto& p : points) paths.push_back(graphite_path(p, "statherd"));
    EXPECT_EQ(paths[0], paths[1]);  // the premise: statherd.a_p_p.req.count twice
    c.begin(points.size());
    int fresh = 0;
    for (size_t i = 0; i < points.size(); ++i) fresh += c.add(paths[i], points[i]) ? 1 : 0;
    EXPECT_EQ(fresh, interval == 0 ? 2 : 0) << "interval " << interval;
  }
  EXPECT_EQ(c.total(), 2u);
}

TEST(PathCollisions, TheSameSeriesTwiceIsNoCollision) {
  PathCollisions c;
  SeriesPoint p = point("web", "req", "count");
  std::string path = graphite_path(p, "statherd");
  c.begin(2);
  EXPECT_FALSE(c.add(path, p));
  EXPECT_FALSE(c.add(path, p));
  EXPECT_EQ(c.total(), 0u);
}

TEST(PathCollisions, TheGraphiteSinkCountsThem) {
  GraphiteSinkOptions o;
  o.address = "-";
  o.stdout_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(o.stdout_fd, 0);
  GraphiteSink sink(o);
  for (int64_t t = 0; t < 3; ++t) {
    IntervalOutput out = testing::output_of(1000 + 10 * t, 10,
                                            {point("a.p.p", "req", "count"),
                                             point("a_p_p", "req", "count"),
                                             point("api", "x", "count")});
    sink.emit(out);
  }
  EXPECT_EQ(sink.counters().path_collisions, 1u);
  sink.stop();
  ::close(o.stdout_fd);
}

}  // namespace
}  // namespace statherd::server
