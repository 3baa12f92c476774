#include "server/block_vector.h"

#include <gtest/gtest.h>

#include <string>

namespace statherd::server {
namespace {

struct Item {
  std::string key;
  int n = 7;
};

TEST(BlockVector, GrowsAcrossBlocksWithoutMovingWhatIsThere) {
  BlockVector<Item, 2> v;  // blocks of 4
  std::vector<const Item*> where;
  for (int i = 0; i < 10; ++i) {
    Item& it = v.emplace_back();
    EXPECT_EQ(it.n, 7);  // value-initialised
    it.key = "k" + std::to_string(i);
    it.n = i;
    where.push_back(&it);
  }
  ASSERT_EQ(v.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(&v[static_cast<size_t>(i)], where[static_cast<size_t>(i)]);  // never moved
    EXPECT_EQ(v[static_cast<size_t>(i)].key, "k" + std::to_string(i));
  }
  EXPECT_EQ(v.back().n, 9);
  int sum = 0;
  v.for_each([&](const Item& it) { sum += it.n; });
  EXPECT_EQ(sum, 45);
  v.clear();
  EXPECT_TRUE(v.empty());
  Item& again = v.emplace_back();  // after clear: a fresh element, not the old first one
  EXPECT_TRUE(again.key.empty());
  EXPECT_EQ(again.n, 7);
  v.push_back(Item{"moved", 1});
  EXPECT_EQ(v[1].key, "moved");
}

TEST(BlockVector, TruncateResetsTheTailAndFreesWholeBlocksOnly) {
  BlockVector<Item, 2> v;  // blocks of 4
  for (int i = 0; i < 10; ++i) v.emplace_back() = Item{"k" + std::to_string(i), i};
  EXPECT_EQ(v.capacity(), 12u);
  v.truncate(20);  // past the end: nothing changes
  EXPECT_EQ(v.size(), 10u);
  const Item* kept = &v[4];
  v.truncate(6);  // keeps a part of the second block
  EXPECT_EQ(v.size(), 6u);
  EXPECT_EQ(v.capacity(), 8u);
  EXPECT_EQ(&v[4], kept);  // what is kept is not moved
  EXPECT_EQ(v[5].key, "k5");
  Item& reused = v.emplace_back();  // the old 7th element, reset
  EXPECT_TRUE(reused.key.empty());
  EXPECT_EQ(reused.n, 7);
  v.truncate(4);  // on a block boundary
  EXPECT_EQ(v.capacity(), 4u);
  EXPECT_EQ(v.back().key, "k3");
  v.emplace_back() = Item{"next", 4};  // a new block
  EXPECT_EQ(v.capacity(), 8u);
  EXPECT_EQ(v[4].key, "next");
  v.truncate(0);
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(v.capacity(), 0u);
  BlockVector<Item, 2> w;
  w.emplace_back() = Item{"a", 1};
  BlockVector<Item, 2> moved(std::move(w));
  EXPECT_EQ(moved.size(), 1u);
  EXPECT_EQ(w.size(), 0u);  // NOLINT(bugprone-use-after-move): a moved-from one is empty
}

}  // namespace
}  // namespace statherd::server
