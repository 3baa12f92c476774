#include "server/gorilla_chunk.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <map>
#include <random>

#include "server/history_tier.h"

namespace statherd::server {
namespace {

// Bitwise equality: NaN payloads and -0.0 must come back exactly.
void expect_same(const std::vector<TimedValue>& got, const std::vector<TimedValue>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].ts, want[i].ts) << "point " << i;
    EXPECT_EQ(std::bit_cast<uint64_t>(got[i].value), std::bit_cast<uint64_t>(want[i].value))
        << "point " << i << ": " << got[i].value << " != " << want[i].value;
  }
}

std::vector<TimedValue> round_trip(const std::vector<TimedValue>& points) {
  GorillaChunk chunk;
  GorillaAppender appender;
  for (const TimedValue& p : points) appender.append(chunk, p.ts, p.value);
  EXPECT_EQ(chunk.count, points.size());
  return decode_chunk(chunk);
}

TEST(GorillaChunk, RoundTripsRandomValuesAndGaps) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> noise(-1e6, 1e6);
  std::uniform_int_distribution<int> gap(1, 4000);
  std::vector<TimedValue> points;
  int64_t ts = 1'700'000'000;
  for (int i = 0; i < 1000; ++i) {
    ts += i % 7 == 0 ? gap(rng) : 10;  // mostly regular, with irregular gaps of every size
    if (i % 97 == 0) ts += int64_t{1} << 40;  // a delta-of-delta beyond every short form
    points.push_back({ts, i % 3 == 0 ? noise(rng) : std::bit_cast<double>(rng())});
  }
  expect_same(round_trip(points), points);
}

TEST(GorillaChunk, RoundTripsEdgeValues) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> values = {0.0,
                                -0.0,
                                std::nan(""),
                                std::bit_cast<double>(uint64_t{0x7ff4000000000123}),  // NaN payload
                                inf,
                                -inf,
                                std::numeric_limits<double>::max(),
                                std::numeric_limits<double>::lowest(),
                                std::numeric_limits<double>::denorm_min(),
                                std::numeric_limits<double>::min(),
                                1e-300,
                                1.0,
                                1.0,
                                -1.0,
                                3.0,
                                0.1};
  std::vector<TimedValue> points;
  for (size_t i = 0; i < values.size(); ++i)
    points.push_back({static_cast<int64_t>(i) * 10 - 50, values[i]});  // negative ts too
  expect_same(round_trip(points), points);
}

TEST(GorillaChunk, RegularConstantSeriesCostsAboutTwoBitsAPoint) {
  GorillaChunk chunk;
  GorillaAppender appender;
  for (int i = 0; i < 256; ++i) appender.append(chunk, 1000 + i * 10, 42.0);
  // 64 bits for the first value, then the first delta (9 bits), then 2 bits a point.
  EXPECT_EQ(chunk.bits, 64u + (9 + 1) + 254u * 2);
  EXPECT_LE(chunk.size(), 80u);
}

// The open chunk's buffer: small ones grow 16 bytes at a time (little slack on a series seen a
// few times), big ones by a quarter (few reallocations: each is a malloc, a copy and a free).
TEST(GorillaChunk, BufferGrowsByLittleWhenSmallAndGeometricallyWhenBig) {
  GorillaChunk chunk;
  GorillaAppender appender;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> value(0, 1e6);
  size_t reallocations = 0, capacity = 0;
  for (int i = 0; i < 256; ++i) {
    appender.append(chunk, 1000 + i * 10, value(rng));  // ~60 bits a point: ~1.9 KiB in all
    if (appender.capacity != capacity) ++reallocations;
    capacity = appender.capacity;
    if (chunk.size() <= 48) {
      EXPECT_LE(capacity, chunk.size() + 16) << "point " << i;
    }
    EXPECT_LE(capacity, chunk.size() + chunk.size() / 4 + 32) << "point " << i;
  }
  EXPECT_GT(chunk.size(), 1800u);
  EXPECT_LE(reallocations, 30u);  // 16 bytes at a time: ~120
  const std::vector<TimedValue> before = decode_chunk(chunk);
  appender.trim(chunk);
  EXPECT_EQ(appender.capacity, chunk.size());
  expect_same(decode_chunk(chunk), before);
}

TEST(HistoryTier, ReemissionOverwritesInEveryChunkAndLateInsertsKeepOrder) {
  HistoryTier tier;
  std::vector<TimedValue> want;
  for (int64_t i = 0; i < 600; ++i) {
    if (i == 300) continue;  // a hole, filled late below
    tier.put(i * 10, static_cast<double>(i));
  }
  // Re-emission of a closed chunk's interval, of the open chunk's and of the newest.
  tier.put(50 * 10, -50.5);
  tier.put(590 * 10, -0.0);
  tier.put(599 * 10, std::nan(""));
  tier.put(300 * 10, 3e300);  // late and older than the newest: inserted in place
  tier.put(600 * 10, 600);    // and appends continue the open chunk after a rewrite
  for (int64_t i = 0; i <= 600; ++i) {
    double v = static_cast<double>(i);
    if (i == 50) v = -50.5;
    if (i == 590) v = -0.0;
    if (i == 599) v = std::nan("");
    if (i == 300) v = 3e300;
    want.push_back({i * 10, v});
  }
  std::vector<TimedValue> got;
  tier.visit(INT64_MIN, INT64_MAX, [&](int64_t ts, double v) { got.push_back({ts, v}); });
  expect_same(got, want);
  EXPECT_EQ(tier.point_count(), 601u);
}

TEST(HistoryTier, ExpireDropsWholeChunksOlderThanTheCutoff) {
  HistoryTier tier;
  for (int64_t i = 0; i < 1000; ++i) tier.put(i, 1.0 * static_cast<double>(i % 5));
  tier.expire(600);  // chunks [0,255] and [256,511] end before 600; [512,767] stays
  size_t n = 0;
  int64_t first = -1;
  tier.visit(INT64_MIN, INT64_MAX, [&](int64_t ts, double) {
    if (n++ == 0) first = ts;
  });
  EXPECT_EQ(first, 512);
  EXPECT_EQ(n, 1000u - 512u);
  tier.expire(2000);
  EXPECT_TRUE(tier.empty());
}

// Appends, re-emissions, late inserts into closed and open chunks, and expiry, at random,
// against a std::map: the tier must hold exactly the map's points (after expiry: the map's
// points from the oldest surviving chunk on, which visit() cuts at the cutoff by itself).
TEST(HistoryTier, RandomPutsAndExpiriesMatchAMap) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 20; ++round) {
    HistoryTier tier;
    std::map<int64_t, double> want;
    int64_t newest = 0;
    std::uniform_int_distribution<int> what(0, 99);
    std::uniform_real_distribution<double> noise(-1e9, 1e9);
    for (int i = 0; i < 3000; ++i) {
      const int w = what(rng);
      int64_t ts;
      if (w < 80 || want.empty()) {
        ts = newest += 1 + (w % 7 == 0 ? static_cast<int64_t>(rng() % 5000) : 9);
      } else {  // an existing or a missing older timestamp
        ts = std::uniform_int_distribution<int64_t>(want.begin()->first, newest)(rng);
      }
      const double v = w % 3 == 0 ? 42.0 : w % 3 == 1 ? std::floor(noise(rng)) : noise(rng);
      tier.put(ts, v);
      want[ts] = v;
      if (i % 500 == 499) {
        const int64_t cutoff = newest - 300000 - static_cast<int64_t>(rng() % 300000);
        tier.expire(cutoff);
        // Chunks are dropped whole: drop from the map what the tier no longer has.
        std::vector<TimedValue> got;
        tier.visit(INT64_MIN, INT64_MAX, [&](int64_t t, double x) { got.push_back({t, x}); });
        // Nothing at or after the cutoff may go (newest >= cutoff: never empty).
        ASSERT_FALSE(got.empty());
        ASSERT_LE(got.front().ts, want.lower_bound(cutoff)->first);
        ASSERT_LE(want.begin()->first, got.front().ts);
        want.erase(want.begin(), want.find(got.front().ts));
      }
    }
    std::vector<TimedValue> got, expected;
    tier.visit(INT64_MIN, INT64_MAX, [&](int64_t t, double x) { got.push_back({t, x}); });
    for (const auto& [t, x] : want) expected.push_back({t, x});
    expect_same(got, expected);
    EXPECT_EQ(tier.point_count(), want.size());
    // A window in the middle.
    if (!want.empty()) {
      const int64_t from = want.begin()->first + (newest - want.begin()->first) / 3;
      const int64_t to = from + (newest - from) / 2;
      std::vector<TimedValue> part, part_want;
      tier.visit(from, to, [&](int64_t t, double x) { part.push_back({t, x}); });
      for (auto it = want.lower_bound(from); it != want.end() && it->first <= to; ++it)
        part_want.push_back({it->first, it->second});
      expect_same(part, part_want);
    }
  }
}

}  // namespace
}  // namespace statherd::server
