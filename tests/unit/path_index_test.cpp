#include "server/path_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace statherd::server {
namespace {

std::vector<std::string> sorted_paths(const PathIndex& index) {
  std::vector<std::string> out;
  for (uint32_t id : index.sorted()) out.emplace_back(index.path(id));
  return out;
}

TEST(PathIndex, FindsInsertsAndKeepsPathOrderAcrossCommits) {
  PathIndex index;
  EXPECT_EQ(index.find("a"), PathIndex::kNone);
  EXPECT_EQ(index.insert("s.web.b.count"), 0u);
  EXPECT_EQ(index.insert("s.web.a.count"), 1u);
  index.commit();
  EXPECT_EQ(index.insert("s.api.x.count"), 2u);
  EXPECT_EQ(index.insert("s.web.ab.count"), 3u);
  index.commit();
  EXPECT_EQ(sorted_paths(index), (std::vector<std::string>{"s.api.x.count", "s.web.a.count",
                                                           "s.web.ab.count", "s.web.b.count"}));
  EXPECT_EQ(index.find("s.web.a.count"), 1u);
  EXPECT_EQ(index.find("s.web.a.coun"), PathIndex::kNone);
  EXPECT_EQ(index.lower_bound("s.web."), 1u);
  EXPECT_EQ(index.lower_bound("t"), 4u);
}

TEST(PathIndex, ManyPathsLongPathsAndCompaction) {
  PathIndex index;
  const std::string long_path(100'000, 'x');  // larger than an arena block
  for (int i = 0; i < 20'000; ++i) {
    if (i == 7'000) index.insert(long_path);
    index.insert("statherd.app.hosts.host-" + std::to_string(i) + ".metric.count");
  }
  index.commit();
  ASSERT_EQ(index.size(), 20'001u);
  EXPECT_EQ(index.find(long_path), 7'000u);
  EXPECT_EQ(index.find("statherd.app.hosts.host-7000.metric.count"), 7'001u);
  // Keep every third id: survivors renumbered in order, found again, still sorted.
  std::vector<bool> keep(index.size());
  for (size_t id = 0; id < keep.size(); ++id) keep[id] = id % 3 == 0;
  index.compact(keep);
  ASSERT_EQ(index.size(), 6'667u);
  EXPECT_EQ(index.find("statherd.app.hosts.host-0.metric.count"), 0u);
  EXPECT_EQ(index.find("statherd.app.hosts.host-3.metric.count"), 1u);  // old id 3
  EXPECT_EQ(index.find(long_path), PathIndex::kNone);                    // old id 7000
  EXPECT_EQ(index.find("statherd.app.hosts.host-1.metric.count"), PathIndex::kNone);
  std::vector<std::string> paths = sorted_paths(index);
  EXPECT_TRUE(std::is_sorted(paths.begin(), paths.end()));
  EXPECT_EQ(paths.size(), 6'667u);
  EXPECT_EQ(index.insert("new"), 6'667u);
  index.commit();
  EXPECT_EQ(index.find("new"), 6'667u);
}

// Against a std::set, over commits of every size (one path among many: the binary-search
// merge; many: the linear one) and paths that share long prefixes, are prefixes of each other,
// differ only past the 8-byte sort key, or hold NUL bytes (the key pads with zeros).
TEST(PathIndex, SortedOrderAndLookupsMatchASetOverRandomCommits) {
  std::mt19937_64 rng(7);
  const std::string prefixes[] = {"", "statherd.app", "statherd.app0.host-1",
                                  std::string("s\0\0", 3), "statherd.app0.host-12.service.x"};
  auto random_path = [&] {
    std::string p = prefixes[rng() % 5];
    const size_t extra = rng() % 12;
    for (size_t i = 0; i < extra; ++i) p.push_back("ab.\0z9"[rng() % 6]);
    return p;
  };
  PathIndex index;
  std::set<std::string> reference;
  std::vector<std::string> by_id;
  for (int round = 0; round < 60; ++round) {
    const size_t adds = round % 3 == 0 ? 1 + rng() % 400 : rng() % 4;
    for (size_t i = 0; i < adds; ++i) {
      std::string p = random_path();
      const uint32_t found = index.find(p);
      if (reference.count(p)) {
        ASSERT_NE(found, PathIndex::kNone);
        EXPECT_EQ(index.path(found), p);
        continue;
      }
      ASSERT_EQ(found, PathIndex::kNone) << p;
      EXPECT_EQ(index.insert(p), by_id.size());
      by_id.push_back(p);
      reference.insert(p);
    }
    index.commit();
    ASSERT_EQ(sorted_paths(index), std::vector<std::string>(reference.begin(), reference.end()))
        << "round " << round;
  }
  for (uint32_t id = 0; id < by_id.size(); ++id) EXPECT_EQ(index.find(by_id[id]), id);
  EXPECT_EQ(index.lower_bound("statherd.app0"),
            static_cast<size_t>(std::distance(reference.begin(),
                                              reference.lower_bound("statherd.app0"))));
}

}  // namespace
}  // namespace statherd::server
