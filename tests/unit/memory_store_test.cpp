#include "server/memory_store.h"
#include "rollup_test_util.h"

#include <gtest/gtest.h>

namespace statherd::server {
namespace {

IntervalOutput output(int64_t start_s, std::vector<std::pair<std::string, double>> metrics,
                      std::string host = "") {
  IntervalOutput out;
  out.start_s = start_s;
  out.interval_s = 10;
  for (auto& [metric, value] : metrics) {
    SeriesPoint p;
    p.level = host.empty() ? Level::App : Level::Host;
    p.app = "web";
    p.host = host;
    p.metric = metric;
    p.stat = "count";
    p.value = value;
    testing::append_point(out, p);
  }
  return out;
}

TEST(GraphiteTime, RelativeAbsoluteAndNow) {
  EXPECT_EQ(*parse_graphite_time("now", 10'000), 10'000);
  EXPECT_EQ(*parse_graphite_time("-10min", 10'000), 9'400);
  EXPECT_EQ(*parse_graphite_time("-1h", 10'000), 6'400);
  EXPECT_EQ(*parse_graphite_time("-30s", 10'000), 9'970);
  EXPECT_EQ(*parse_graphite_time("-2d", 200'000), 27'200);
  EXPECT_EQ(*parse_graphite_time("1700000000", 10'000), 1'700'000'000);
  EXPECT_FALSE(parse_graphite_time("-10parsecs", 10'000).ok());
  EXPECT_FALSE(parse_graphite_time("12abc", 10'000).ok());
  EXPECT_FALSE(parse_graphite_time("-5", 10'000).ok());  // no unit: graphite-web refuses it too
}

// graphite-web's parseATTime references and offsets (UTC). now = 2023-11-15 (a Wednesday)
// 13:47:05 UTC = 1700056025.
TEST(GraphiteTime, ReferencesAndOffsetsAsGraphiteWeb) {
  const int64_t now = 1'700'056'025, midnight = 1'700'006'400;
  EXPECT_EQ(*parse_graphite_time("now-10min", now), now - 600);
  EXPECT_EQ(*parse_graphite_time("now+1h", now), now + 3600);
  EXPECT_EQ(*parse_graphite_time("midnight", now), midnight);
  EXPECT_EQ(*parse_graphite_time("today", now), midnight);
  EXPECT_EQ(*parse_graphite_time("yesterday", now), midnight - 86400);
  EXPECT_EQ(*parse_graphite_time("tomorrow", now), midnight + 86400);
  EXPECT_EQ(*parse_graphite_time("noon", now), midnight + 12 * 3600);
  EXPECT_EQ(*parse_graphite_time("teatime", now), midnight + 16 * 3600);
  EXPECT_EQ(*parse_graphite_time("noon yesterday", now), midnight - 86400 + 12 * 3600);
  EXPECT_EQ(*parse_graphite_time("9am", now), midnight + 9 * 3600);
  EXPECT_EQ(*parse_graphite_time("3pm", now), midnight + 15 * 3600);
  EXPECT_EQ(*parse_graphite_time("10:30pm", now), midnight + 22 * 3600 + 30 * 60);
  EXPECT_EQ(*parse_graphite_time("midnight-1d", now), midnight - 86400);
  EXPECT_EQ(*parse_graphite_time("11/14/23", now), midnight - 86400);
  EXPECT_EQ(*parse_graphite_time("11/14/2023", now), midnight - 86400);
  EXPECT_EQ(*parse_graphite_time("22:13 20231114", now), midnight - 86400 + 22 * 3600 + 13 * 60);
  EXPECT_EQ(*parse_graphite_time("monday", now), midnight - 2 * 86400);
  EXPECT_EQ(*parse_graphite_time("wednesday", now), midnight);  // today is one
  EXPECT_EQ(*parse_graphite_time("nov14", now), midnight - 86400);
  EXPECT_EQ(*parse_graphite_time("jan1", now), 1'672'531'200);  // this year's
  EXPECT_EQ(*parse_graphite_time("-1h30min", now), now - 5400);
  EXPECT_FALSE(parse_graphite_time("13/40/23", now).ok());
  EXPECT_FALSE(parse_graphite_time("feb30", now).ok());
  EXPECT_FALSE(parse_graphite_time("someday", now).ok());
  EXPECT_FALSE(parse_graphite_time("now-5m", now).ok());  // m is neither min nor mon
}

TEST(MemoryStore, RenderShapeWithNullsForMissingIntervals) {
  MemoryStore store({});
  store.emit(output(1000, {{"req", 5}}));
  store.emit(output(1020, {{"req", 7.5}}));
  nlohmann::json r = store.render({"statherd.web.req.count"}, 990, 1030);
  nlohmann::json expected = nlohmann::json::parse(R"([{"target": "statherd.web.req.count",
      "datapoints": [[5.0, 1000], [null, 1010], [7.5, 1020], [null, 1030]]}])");
  EXPECT_EQ(r, expected);
}

TEST(MemoryStore, RenderGlobAndSeveralTargetsEachPathOnce) {
  MemoryStore store({});
  store.emit(output(1000, {{"a", 1}, {"b", 2}}));
  store.emit(output(1000, {{"a", 3}}, "h1"));
  nlohmann::json r = store.render({"statherd.web.*.count", "statherd.web.a.count",
                                   "statherd.web.hosts.*.a.count"},
                                  995, 1000);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0]["target"], "statherd.web.a.count");
  EXPECT_EQ(r[1]["target"], "statherd.web.b.count");
  EXPECT_EQ(r[2]["target"], "statherd.web.hosts.h1.a.count");
  EXPECT_EQ(r[2]["datapoints"], nlohmann::json::parse("[[3.0, 1000]]"));
}

TEST(MemoryStore, ReemissionOverwritesTheSlot) {
  MemoryStore store({});
  store.emit(output(1000, {{"req", 5}}));
  IntervalOutput again = output(1000, {{"req", 9}});
  again.reemit = true;
  store.emit(again);
  EXPECT_EQ(store.render({"statherd.web.req.count"}, 995, 1000)[0]["datapoints"],
            nlohmann::json::parse("[[9.0, 1000]]"));
}

TEST(MemoryStore, RetentionForgetsOldValuesAndPaths) {
  MemoryStore store({std::chrono::seconds(60), 1000, "statherd"});
  store.emit(output(1000, {{"old", 1}, {"req", 1}}));
  store.emit(output(1070, {{"req", 2}}));
  store.emit(output(1200, {{"req", 3}}));
  nlohmann::json r = store.render({"statherd.web.*.count"}, 900, 1200);
  ASSERT_EQ(r.size(), 1u);  // "old" expired
  EXPECT_EQ(r[0]["target"], "statherd.web.req.count");
  // Only the last 60 s are rendered: 1150..1200, with 1200 present.
  nlohmann::json points = r[0]["datapoints"];
  ASSERT_EQ(points.size(), 6u);
  EXPECT_EQ(points[0], nlohmann::json::parse("[null, 1150]"));
  EXPECT_EQ(points[5], nlohmann::json::parse("[3.0, 1200]"));
}

TEST(MemoryStore, FindShapesBranchesAndLeaves) {
  MemoryStore store({});
  store.emit(output(1000, {{"req.ok", 1}, {"req.err", 2}, {"queue", 3}}));
  nlohmann::json r = store.find("statherd.web.*");
  nlohmann::json expected = nlohmann::json::parse(R"([
    {"text": "queue", "id": "statherd.web.queue", "leaf": 0, "expandable": 1, "allowChildren": 1},
    {"text": "req", "id": "statherd.web.req", "leaf": 0, "expandable": 1, "allowChildren": 1}])");
  EXPECT_EQ(r, expected);
  nlohmann::json leaf = store.find("statherd.web.req.ok.count");
  ASSERT_EQ(leaf.size(), 1u);
  EXPECT_EQ(leaf[0]["leaf"], 1);
  EXPECT_EQ(leaf[0]["text"], "count");
  EXPECT_EQ(store.find("statherd.web.req.{ok,err}").size(), 2u);
  EXPECT_EQ(store.find("nothing.*").size(), 0u);
}

TEST(MemoryStore, MaxPathsRefusesNewPaths) {
  MemoryStore store({std::chrono::seconds(3600), 2, "statherd"});
  store.emit(output(1000, {{"a", 1}, {"b", 2}, {"c", 3}}));
  EXPECT_EQ(store.path_count(), 2u);
  EXPECT_EQ(store.refused_paths(), 1u);
}

// A refused path is remembered (a full store does not look every refused path up again each
// interval: at 2M series that was a fifth of the server's CPU), is still counted each time, and
// is stored once expiry makes room.
TEST(MemoryStore, RefusedPathIsStoredOnceExpiryMakesRoom) {
  MemoryStore store({std::chrono::seconds(60), 2, "statherd"});
  store.emit(output(1000, {{"a", 1}, {"b", 2}, {"c", 3}}));
  store.emit(output(1010, {{"a", 1}, {"b", 2}, {"c", 4}}));
  EXPECT_EQ(store.path_count(), 2u);
  EXPECT_EQ(store.refused_paths(), 2u);
  store.emit(output(1100, {{"c", 5}}));  // refused again, then a and b expire
  EXPECT_EQ(store.refused_paths(), 3u);
  EXPECT_EQ(store.path_count(), 0u);
  store.emit(output(1110, {{"c", 6}, {"d", 7}}));
  EXPECT_EQ(store.path_count(), 2u);
  EXPECT_EQ(store.refused_paths(), 3u);
  nlohmann::json r = store.render({"statherd.web.*.count"}, 1100, 1110);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0]["target"], "statherd.web.c.count");
  EXPECT_EQ(r[0]["datapoints"].back(), nlohmann::json::parse("[6.0, 1110]"));
  EXPECT_EQ(r[1]["target"], "statherd.web.d.count");
}

TEST(MemoryStore, NonFiniteValuesAreNotStored) {
  MemoryStore store({});
  store.emit(output(1000, {{"nan", std::nan("")}}));
  EXPECT_EQ(store.path_count(), 0u);
}

TEST(GraphiteTime, GraphiteAbsoluteForms) {
  // 2023-11-14 00:00:00 UTC = 1699920000.
  EXPECT_EQ(*parse_graphite_time("20231114", 10'000), 1'699'920'000);
  EXPECT_EQ(*parse_graphite_time("22:13_20231114", 10'000), 1'699'920'000 + 22 * 3600 + 13 * 60);
  EXPECT_EQ(*parse_graphite_time("00:00_19700101", 10'000), 0);
  EXPECT_EQ(*parse_graphite_time("20000229", 10'000), 951'782'400);  // leap day
  // 8 digits that are no date stay unix seconds, as in Graphite.
  EXPECT_EQ(*parse_graphite_time("20231399", 10'000), 20'231'399);
  EXPECT_EQ(*parse_graphite_time("19000229", 10'000), 19'000'229);  // 1900 is no leap year
  EXPECT_FALSE(parse_graphite_time("24:00_20231114", 10'000).ok());
  EXPECT_FALSE(parse_graphite_time("12:60_20231114", 10'000).ok());
  EXPECT_EQ(*parse_graphite_time("1:00_20231114", 10'000), 1'699'920'000 + 3600);
}

TEST(Consolidation, AveragesRunsIgnoringNulls) {
  nlohmann::json points = nlohmann::json::parse(
      "[[1.0, 10], [3.0, 20], [null, 30], [6.0, 40], [null, 50], [null, 60], [9.0, 70]]");
  EXPECT_EQ(consolidate_datapoints(points, 0), points);
  EXPECT_EQ(consolidate_datapoints(points, 7), points);
  // ceil(7 / 3) = 3 points per bucket: [1,3,null] [6,null,null] [9].
  EXPECT_EQ(consolidate_datapoints(points, 3),
            nlohmann::json::parse("[[2.0, 10], [6.0, 40], [9.0, 70]]"));
  // ceil(7 / 2) = 4: [1,3,null,6] [null,null,9].
  EXPECT_EQ(consolidate_datapoints(points, 2),
            nlohmann::json::parse("[[3.3333333333333335, 10], [9.0, 50]]"));
  EXPECT_EQ(consolidate_datapoints(nlohmann::json::parse("[[null, 10], [null, 20]]"), 1),
            nlohmann::json::parse("[[null, 10]]"));
}

TEST(MemoryStore, RenderHonoursMaxDataPoints) {
  MemoryStore store({});
  for (int64_t t = 1000; t <= 1030; t += 10) {
    store.emit(output(t, {{"req", static_cast<double>(t - 990)}}));
  }
  nlohmann::json r = store.render({"statherd.web.req.count"}, 990, 1030, 2);
  EXPECT_EQ(r[0]["datapoints"], nlohmann::json::parse("[[15.0, 1000], [35.0, 1020]]"));
}

}  // namespace
}  // namespace statherd::server
