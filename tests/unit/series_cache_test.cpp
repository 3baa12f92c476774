#include "server/sinks/series_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <vector>
#include <random>

namespace statherd::server {
namespace {

struct Entry {
  uint64_t id = 0;
  int uses = 0;
};

// Ids spread over 64 bits (so that their table positions collide and runs form), never 0.
uint64_t scatter(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return (x ^ (x >> 31)) | 1;
}

using Model = std::map<uint64_t, std::pair<Entry*, uint64_t>>;  // id -> (address, last emit asked)

// Asks the cache for `id` in emit `emit`; checks the answer against the model and updates it:
// an entry keeps its address and contents while asked, and a new one comes value-initialized.
void ask(SeriesCache<Entry>& cache, Model& model, uint64_t id, uint64_t emit) {
  bool made = false;
  Entry& entry = cache.get(id, made);
  auto it = model.find(id);
  ASSERT_EQ(made, it == model.end()) << id << " emit " << emit;
  if (made) {
    ASSERT_EQ(entry.id, 0u);  // not a dropped entry's leftovers
    ASSERT_EQ(entry.uses, 0);
    entry.id = id;
    model[id] = {&entry, emit};
  } else {
    ASSERT_EQ(&entry, it->second.first) << id;
    ASSERT_EQ(entry.id, id);
    it->second.second = emit;
  }
  ++entry.uses;
}

// The emit order repeats (the engine's order), with churn: some ids leave, new ones come at
// random places, a run is asked twice and the order is sometimes reversed. Every answer matches
// the model whether the sequential guess hit or the table answered.
TEST(SeriesCache, RepeatedOrderWithChurnMatchesAModel) {
  using Cache = SeriesCache<Entry>;
  Cache cache;
  std::mt19937_64 rng(11);
  std::vector<uint64_t> order;
  uint64_t next_id = 1;
  for (int k = 0; k < 2000; ++k) order.push_back(scatter(next_id++));
  Model model;
  uint64_t dropped = 0;
  for (uint64_t e = 1; e <= 60; ++e) {
    cache.begin_emit();
    for (int c = 0; c < 40; ++c) order.erase(order.begin() + static_cast<long>(rng() % order.size()));
    for (int c = 0; c < 40; ++c)
      order.insert(order.begin() + static_cast<long>(rng() % order.size()), scatter(next_id++));
    std::vector<uint64_t> asked = order;
    if (e % 7 == 3) std::reverse(asked.begin(), asked.end());
    asked.insert(asked.begin() + 500, order.begin() + 100, order.begin() + 200);  // twice
    for (uint64_t id : asked) ASSERT_NO_FATAL_FAILURE(ask(cache, model, id, e));
    // Only entries idle for kIdleEmits are dropped: a hit that forgot to mark the entry seen
    // would drop a live one here.
    cache.end_emit([&](Entry& gone) {
      auto it = model.find(gone.id);
      ASSERT_NE(it, model.end()) << gone.id;
      EXPECT_GE(e - it->second.second, Cache::kIdleEmits) << gone.id << " dropped while asked";
      model.erase(it);
      ++dropped;
    });
    ASSERT_EQ(cache.size(), model.size()) << "emit " << e;
  }
  EXPECT_GT(dropped, 0u);
}

// A sink that expires entries itself (the Prometheus sink) finds and erases by id: find()
// answers what get() made without making or marking anything, erase() drops one entry and
// leaves every other reachable (colliding ids: the table's runs close up behind the erased one).
TEST(SeriesCache, FindAndEraseMatchAModel) {
  using Cache = SeriesCache<Entry>;
  Cache cache;
  std::mt19937_64 rng(23);
  std::map<uint64_t, Entry*> model;
  EXPECT_EQ(cache.find(5), nullptr);  // empty: no table yet
  cache.erase(5);
  for (int round = 0; round < 40; ++round) {
    cache.begin_emit();
    for (int k = 0; k < 300; ++k) {
      const uint64_t id = scatter(1 + rng() % 3000);
      bool made = false;
      Entry& e = cache.get(id, made);
      ASSERT_EQ(made, !model.count(id)) << id;
      if (made) e.id = id;
      model[id] = &e;
    }
    for (int k = 0; k < 200; ++k) {
      const uint64_t id = scatter(1 + rng() % 3000);
      if (rng() % 2) {
        cache.erase(id);
        model.erase(id);
      }
      Entry* found = cache.find(id);
      auto it = model.find(id);
      ASSERT_EQ(found, it == model.end() ? nullptr : it->second) << id;
    }
    ASSERT_EQ(cache.size(), model.size());
    for (const auto& [id, entry] : model) ASSERT_EQ(cache.find(id), entry) << id;
    cache.end_emit([&](Entry& gone) { model.erase(gone.id); });
  }
  // find() does not mark an entry seen: one only found is dropped once idle.
  cache.clear([](Entry&) {});
  bool made = false;
  cache.begin_emit();
  cache.get(9, made).id = 9;
  for (uint64_t e = 0; e < 2 * Cache::kIdleEmits; ++e) {
    cache.begin_emit();
    ASSERT_NE(cache.find(9), nullptr);
    cache.end_emit([](Entry&) {});
    if (cache.size() == 0) break;
  }
  EXPECT_EQ(cache.size(), 0u);
}

// Random ids over many emits against a model: an entry keeps its address and contents while
// seen, is dropped (on_drop first) once idle for kIdleEmits at a sweep, and comes back fresh.
TEST(SeriesCache, MatchesAModelThroughGrowthSweepsAndReuse) {
  using Cache = SeriesCache<Entry>;
  Cache cache;
  std::mt19937_64 rng(5);
  Model model;
  uint64_t emit = 0, dropped = 0, expected_drops = 0;
  for (int e = 0; e < 200; ++e) {
    cache.begin_emit();
    ++emit;
    // A drifting window of ids: old ones go idle, new ones come.
    const uint64_t base = 1 + static_cast<uint64_t>(e) * 40;
    for (int k = 0; k < 3000; ++k) {
      ASSERT_NO_FATAL_FAILURE(ask(cache, model, scatter(base + rng() % 4000), emit));
    }
    if (emit % Cache::kSweepEvery == 0) {
      for (auto it = model.begin(); it != model.end();) {
        if (emit - it->second.second >= Cache::kIdleEmits) {
          ++expected_drops;
          it = model.erase(it);
        } else {
          ++it;
        }
      }
    }
    cache.end_emit([&](Entry& gone) {
      ++dropped;
      EXPECT_NE(gone.id, 0u);
    });
    ASSERT_EQ(dropped, expected_drops) << "emit " << emit;
    ASSERT_EQ(cache.size(), model.size()) << "emit " << emit;
  }
  EXPECT_GT(dropped, 1000u);
  size_t seen = 0;
  cache.for_each([&](Entry& x) {
    ++seen;
    EXPECT_TRUE(model.count(x.id)) << x.id;
  });
  EXPECT_EQ(seen, model.size());
  size_t cleared = 0;
  cache.clear([&](Entry&) { ++cleared; });
  EXPECT_EQ(cleared, seen);
  EXPECT_EQ(cache.size(), 0u);
  bool made = false;
  EXPECT_EQ(cache.get(7, made).uses, 0);
  EXPECT_TRUE(made);
}

}  // namespace
}  // namespace statherd::server
