#include "server/id_index.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace statherd::server {
namespace {

struct Keys {
  const std::vector<std::string>* keys;
  std::string_view operator()(uint32_t id) const { return (*keys)[id]; }
};

TEST(IdIndex, FindsWhatWasInsertedAndNothingElse) {
  std::vector<std::string> keys = {"a", "b", "host-1\1app", ""};
  IdIndex index;
  for (uint32_t i = 0; i < keys.size(); ++i) index.insert(keys[i], i);
  Keys key_of{&keys};
  for (uint32_t i = 0; i < keys.size(); ++i) EXPECT_EQ(index.find(keys[i], key_of), i);
  EXPECT_EQ(index.find("c", key_of), IdIndex::kNone);
  EXPECT_EQ(index.size(), 4u);
}

TEST(IdIndex, EmptyIndexFindsAndErasesNothing) {
  std::vector<std::string> keys;
  IdIndex index;
  EXPECT_EQ(index.find("x", Keys{&keys}), IdIndex::kNone);
  EXPECT_FALSE(index.erase("x", Keys{&keys}));
}

// Random inserts and erases against std::unordered_map, through many growths, so entries
// share probe runs and erase must shift them back: a lost or stale entry shows as a mismatch.
TEST(IdIndex, MatchesAMapThroughInsertsErasesAndGrowth) {
  std::mt19937 rng(7);
  std::vector<std::string> keys;
  std::unordered_map<std::string, uint32_t> model;
  IdIndex index;
  Keys key_of{&keys};
  for (int round = 0; round < 60000; ++round) {
    const std::string key = "series." + std::to_string(rng() % 5000);
    auto it = model.find(key);
    if (it == model.end()) {
      const uint32_t id = static_cast<uint32_t>(keys.size());
      keys.push_back(key);
      index.insert(key, id);
      model.emplace(key, id);
    } else if (rng() % 2 == 0) {
      ASSERT_TRUE(index.erase(key, key_of)) << key;
      keys[it->second] = "\xff erased";  // what a recycled record's key looks like
      model.erase(it);
    }
    if (round % 997 == 0) {
      for (const auto& [k, id] : model) ASSERT_EQ(index.find(k, key_of), id) << k;
      ASSERT_EQ(index.size(), model.size());
    }
  }
  for (int i = 0; i < 5000; ++i) {
    const std::string key = "series." + std::to_string(i);
    auto it = model.find(key);
    EXPECT_EQ(index.find(key, key_of), it == model.end() ? IdIndex::kNone : it->second) << key;
  }
}

}  // namespace
}  // namespace statherd::server
