// MapPlanner (server/cluster_coordinator.h): when the coordinator writes the next shard map
// and what it holds, fed maps and members that change from round to round.
#include <gtest/gtest.h>

#include "server/cluster_coordinator.h"

namespace statherd::server {
namespace {

using namespace std::chrono_literals;
using cluster::ShardMap;

CoordinatorSettings settings() {
  CoordinatorSettings s;
  s.shards = 16;
  s.replicas = 2;
  s.interval = 10s;
  s.dead_after = 60s;
  s.lead = 10s;
  return s;
}

constexpr int64_t kNow = 1'700'000'003'000;  // 3 s into an interval

TEST(MapPlanner, TheFirstMapHoldsWhoIsRegisteredFromABoundaryAhead) {
  MapPlanner p(settings());
  EXPECT_FALSE(p.plan({}, {}, kNow));  // nobody registered: nothing to write
  auto first = p.plan({}, {"b", "a"}, kNow);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->epoch, 1u);
  EXPECT_EQ(first->members, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(first->shards, 16u);
  EXPECT_EQ(first->replicas, 2u);
  EXPECT_EQ(first->from_ms % 10'000, 0);
  EXPECT_GE(first->from_ms, kNow + 20'000);  // two intervals (more than the 10 s lead)
  EXPECT_LT(first->from_ms, kNow + 30'000);
  EXPECT_FALSE(p.plan({*first}, {"a", "b"}, kNow + 1000));  // the same members: no new map
}

TEST(MapPlanner, AJoinerGetsTheNextEpochAndEpochsNeverGoBack) {
  MapPlanner p(settings());
  auto m1 = *p.plan({}, {"a", "b"}, kNow);
  auto m2 = p.plan({m1}, {"a", "b", "c"}, kNow + 2000);
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->epoch, 2u);
  EXPECT_EQ(m2->members, (std::vector<std::string>{"a", "b", "c"}));
  // m1 is not in force yet (it starts at m1.from_ms): m2 starts at least an interval after it.
  EXPECT_GE(m2->from_ms, m1.from_ms + 10'000);
  // An epoch seen in etcd that did not parse is skipped, never written over.
  auto m3 = p.plan({m1, *m2}, {"a", "b", "c", "d"}, kNow + 4000, /*highest_epoch_seen=*/7);
  ASSERT_TRUE(m3);
  EXPECT_EQ(m3->epoch, 8u);
}

TEST(MapPlanner, AnAbsentMemberKeepsItsShardsUntilDeadAfter) {
  MapPlanner p(settings());
  auto m1 = *p.plan({}, {"a", "b", "c"}, kNow);
  int64_t t = kNow + 30'000;
  EXPECT_FALSE(p.plan({m1}, {"a", "c"}, t));  // b just went missing
  EXPECT_EQ(p.absent_since().at("b"), t);
  EXPECT_FALSE(p.plan({m1}, {"a", "c"}, t + 59'000));  // still within dead_after
  auto m2 = p.plan({m1}, {"a", "c"}, t + 60'000);
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->members, (std::vector<std::string>{"a", "c"}));
  EXPECT_GE(m2->from_ms, t + 80'000);
  EXPECT_TRUE(p.absent_since().count("b"));  // until a map without it is read back
  EXPECT_FALSE(p.plan({m1, *m2}, {"a", "c"}, t + 61'000));
  EXPECT_TRUE(p.absent_since().empty());
}

TEST(MapPlanner, AServerBackWithinDeadAfterMovesNothing) {
  MapPlanner p(settings());
  auto m1 = *p.plan({}, {"a", "b"}, kNow);
  EXPECT_FALSE(p.plan({m1}, {"a"}, kNow + 10'000));   // b restarting
  EXPECT_FALSE(p.plan({m1}, {"a", "b"}, kNow + 40'000));  // back: the absence is forgotten
  EXPECT_TRUE(p.absent_since().empty());
  EXPECT_FALSE(p.plan({m1}, {"a"}, kNow + 80'000));   // gone again: counted from now
  EXPECT_EQ(p.absent_since().at("b"), kNow + 80'000);
  EXPECT_FALSE(p.plan({m1}, {"a"}, kNow + 130'000));
  EXPECT_TRUE(p.plan({m1}, {"a"}, kNow + 140'000));
}

TEST(MapPlanner, EveryoneGoneKeepsTheLastMap) {
  MapPlanner p(settings());
  auto m1 = *p.plan({}, {"a", "b"}, kNow);
  EXPECT_FALSE(p.plan({m1}, {}, kNow + 10'000));
  EXPECT_FALSE(p.plan({m1}, {}, kNow + 500'000));
  // The first to come back is the map's only member once the others are past dead_after.
  auto m2 = p.plan({m1}, {"b"}, kNow + 510'000);
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->members, (std::vector<std::string>{"b"}));
}

TEST(MapPlanner, ShardsAndReplicasStayTheClustersWhateverThisServerSays) {
  CoordinatorSettings other = settings();
  other.shards = 128;
  other.replicas = 3;
  MapPlanner first(settings());
  auto m1 = *first.plan({}, {"a"}, kNow);
  MapPlanner p(other);  // a server configured differently takes over
  auto m2 = p.plan({m1}, {"a", "b"}, kNow + 1000);
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->shards, 16u);
  EXPECT_EQ(m2->replicas, 2u);
}

TEST(MapPlanner, TheLeadIsAtLeastTwoIntervals) {
  CoordinatorSettings s = settings();
  s.interval = 60s;
  s.lead = 1s;
  MapPlanner p(s);
  EXPECT_EQ(p.next_from_ms(120'000, 0), 240'000);   // on a boundary: two intervals on
  EXPECT_EQ(p.next_from_ms(121'000, 0), 300'000);   // rounded up to the next boundary
  EXPECT_EQ(p.next_from_ms(121'000, 600'000), 660'000);  // after the pending map's start
}

}  // namespace
}  // namespace statherd::server
