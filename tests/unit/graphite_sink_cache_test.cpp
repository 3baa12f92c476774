// The Graphite sink's per-series cache (server/sinks/graphite_cache.h) seen from its output:
// a key keeps its lines across intervals, a reload renames at once, idle keys are dropped.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "server/sinks/graphite.h"

namespace statherd::server {
namespace {

// A sink writing to a pipe; text() stops it and returns everything it wrote.
class PipeSink {
 public:
  explicit PipeSink(GraphiteSinkOptions o = {}) {
    EXPECT_EQ(::pipe(fds_), 0);
    o.address = "-";
    o.stdout_fd = fds_[1];
    sink_ = std::make_unique<GraphiteSink>(std::move(o));
  }
  ~PipeSink() {
    if (sink_) text();
    ::close(fds_[0]);
  }
  GraphiteSink& sink() { return *sink_; }
  int write_fd() const { return fds_[1]; }
  std::string text() {
    sink_->stop();
    sink_.reset();
    ::close(fds_[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds_[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }

 private:
  int fds_[2] = {-1, -1};
  std::unique_ptr<GraphiteSink> sink_;
};

// One counter record of `key` with the given stats.
IntervalOutput output(int64_t start_s, const SeriesKeyRef& key,
                      std::vector<std::pair<std::string, double>> stats) {
  IntervalOutput out;
  out.start_s = start_s;
  out.add(key, SeriesKind::Counter);
  for (auto& [name, value] : stats) out.stat(name, value);
  return out;
}

TEST(GraphiteSinkCache, AKeyKeepsItsPathsAcrossIntervalsWhateverItsStats) {
  SeriesKeyRef key = make_series_key(Level::Process, "web", "h1", 42, "req", {{"dc", "eu 1"}});
  PipeSink pipe;
  pipe.sink().emit(output(10, key, {{"count", 5}, {"rate", 0.5}, {"m1_rate", 0.25}}));
  pipe.sink().emit(output(20, key, {{"count", 7}, {"rate", 0.7}, {"m1_rate", 0.3}}));
  // A re-emission has no EWMA; a stat may also come in another position.
  pipe.sink().emit(output(10, key, {{"rate", 0.6}, {"count", 6}}));
  EXPECT_EQ(pipe.text(),
            "statherd.web.hosts.h1.pids.42.req.dc.eu_1.count 5 10\n"
            "statherd.web.hosts.h1.pids.42.req.dc.eu_1.rate 0.5 10\n"
            "statherd.web.hosts.h1.pids.42.req.dc.eu_1.m1_rate 0.25 10\n"
            "statherd.web.hosts.h1.pids.42.req.dc.eu_1.count 7 20\n"
            "statherd.web.hosts.h1.pids.42.req.dc.eu_1.rate 0.7 20\n"
            "statherd.web.hosts.h1.pids.42.req.dc.eu_1.m1_rate 0.3 20\n"
            "statherd.web.hosts.h1.pids.42.req.dc.eu_1.rate 0.6 10\n"
            "statherd.web.hosts.h1.pids.42.req.dc.eu_1.count 6 10\n");
}

TEST(GraphiteSinkCache, ReconfigureRenamesEveryKnownSeriesAtOnce) {
  SeriesKeyRef key = make_series_key(Level::App, "web", "", -1, "req", {{"dc", "eu"}});
  GraphiteSinkOptions o;
  o.rules = GraphiteRules({*make_graphite_rule("forbid", "\\.rate$")});
  PipeSink pipe(o);
  pipe.sink().emit(output(10, key, {{"count", 1}, {"rate", 2}}));
  GraphiteSinkOptions next;
  next.address = "-";
  next.stdout_fd = pipe.write_fd();  // the sender may take its options after this
  next.prefix = "dc1.new";
  next.tags = true;  // and no rules any more
  pipe.sink().reconfigure(next);
  pipe.sink().emit(output(20, key, {{"count", 3}, {"rate", 4}}));
  next.tags = false;
  pipe.sink().reconfigure(next);
  pipe.sink().emit(output(30, key, {{"count", 5}}));
  EXPECT_EQ(pipe.text(),
            "statherd.web.req.dc.eu.count 1 10\n"
            "dc1.new.web.req.count;dc=eu 3 20\n"
            "dc1.new.web.req.rate;dc=eu 4 20\n"
            "dc1.new.web.req.dc.eu.count 5 30\n");
}

TEST(GraphiteSinkCache, TwoKeysOfOneSeriesGetTheSameLines) {
  // The engine makes one key per series; a new key of an equal series (e.g. after the series
  // was dropped and came back) names the same paths, and is no collision with itself.
  PipeSink pipe;
  pipe.sink().emit(output(10, make_series_key(Level::App, "web", "", -1, "req", {}), {{"count", 1}}));
  pipe.sink().emit(output(20, make_series_key(Level::App, "web", "", -1, "req", {}), {{"count", 2}}));
  auto c = pipe.sink().counters();
  EXPECT_EQ(pipe.text(), "statherd.web.req.count 1 10\nstatherd.web.req.count 2 20\n");
  EXPECT_EQ(c.path_collisions, 0u);
}

}  // namespace
}  // namespace statherd::server
