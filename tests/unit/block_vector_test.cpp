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

}  // namespace
}  // namespace statherd::server
