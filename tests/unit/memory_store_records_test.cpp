// The memory store as a sink of records: per key it caches each stat's index id, and those ids
// follow the index when expiry compacts it.
#include <gtest/gtest.h>

#include "server/memory_store.h"

namespace statherd::server {
namespace {

IntervalOutput output(int64_t start_s,
                      std::vector<std::pair<SeriesKeyRef, std::vector<std::pair<std::string, double>>>>
                          records) {
  IntervalOutput out;
  out.start_s = start_s;
  out.interval_s = 10;
  for (auto& [key, stats] : records) {
    out.add(key, SeriesKind::Gauge);
    for (auto& [name, value] : stats) out.stat(name, value);
  }
  return out;
}

nlohmann::json points(const MemoryStore& store, const std::string& path, int64_t from,
                      int64_t until) {
  nlohmann::json r = store.render({path}, from, until);
  return r.size() == 1 ? r[0]["datapoints"] : nlohmann::json();
}

SeriesKeyRef key(const std::string& metric) {
  return make_series_key(Level::Host, "web", "h1", -1, metric, {});
}

TEST(MemoryStoreRecords, CachedIdsFollowTheIndexWhenExpiryCompactsIt) {
  MemoryStore store({std::chrono::seconds(60), 1000, "statherd"});
  SeriesKeyRef old = key("old"), req = key("req"), fresh = key("fresh");
  store.emit(output(1000, {{old, {{"min", 1}, {"max", 2}}}, {req, {{"min", 10}, {"max", 20}}}}));
  // At 1070 "old" is past the 60 s retention: its paths go and req's ids are renumbered.
  store.emit(output(1070, {{req, {{"min", 11}, {"max", 21}}}}));
  ASSERT_EQ(store.path_count(), 2u);
  store.emit(output(1080, {{req, {{"min", 12}, {"max", 22}}}, {fresh, {{"min", 5}}}}));
  store.emit(output(1090, {{fresh, {{"min", 6}}}, {req, {{"max", 23}, {"min", 13}}}}));
  EXPECT_EQ(store.path_count(), 3u);
  EXPECT_EQ(points(store, "statherd.web.hosts.h1.req.min", 1065, 1090),
            nlohmann::json::parse("[[11.0, 1070], [12.0, 1080], [13.0, 1090]]"));
  EXPECT_EQ(points(store, "statherd.web.hosts.h1.req.max", 1065, 1090),
            nlohmann::json::parse("[[21.0, 1070], [22.0, 1080], [23.0, 1090]]"));
  EXPECT_EQ(points(store, "statherd.web.hosts.h1.fresh.min", 1065, 1090),
            nlohmann::json::parse("[[null, 1070], [5.0, 1080], [6.0, 1090]]"));
  EXPECT_EQ(store.render({"statherd.web.hosts.h1.old.*"}, 1000, 1090).size(), 0u);
}

TEST(MemoryStoreRecords, AKeyThatComesBackAfterItsPathsExpiredIsStoredAgain) {
  MemoryStore store({std::chrono::seconds(60), 1000, "statherd"});
  SeriesKeyRef a = key("a"), b = key("b");
  store.emit(output(1000, {{a, {{"last", 1}}}, {b, {{"last", 2}}}}));
  store.emit(output(1100, {{b, {{"last", 3}}}}));  // a's path expires; b's id is renumbered
  store.emit(output(1110, {{a, {{"last", 4}}}, {b, {{"last", 5}}}}));
  EXPECT_EQ(points(store, "statherd.web.hosts.h1.a.last", 1095, 1110),
            nlohmann::json::parse("[[null, 1100], [4.0, 1110]]"));
  EXPECT_EQ(points(store, "statherd.web.hosts.h1.b.last", 1095, 1110),
            nlohmann::json::parse("[[3.0, 1100], [5.0, 1110]]"));
}

TEST(MemoryStoreRecords, RefusedPathsAreTriedAgainAndCountedEachTime) {
  MemoryStore store({std::chrono::seconds(3600), 1, "statherd"});
  SeriesKeyRef a = key("a");
  store.emit(output(1000, {{a, {{"min", 1}, {"max", 2}}}}));
  store.emit(output(1010, {{a, {{"min", 3}, {"max", 4}}}}));
  EXPECT_EQ(store.path_count(), 1u);
  EXPECT_EQ(store.refused_paths(), 2u);
  EXPECT_EQ(points(store, "statherd.web.hosts.h1.a.min", 995, 1010),
            nlohmann::json::parse("[[1.0, 1000], [3.0, 1010]]"));
}

}  // namespace
}  // namespace statherd::server
