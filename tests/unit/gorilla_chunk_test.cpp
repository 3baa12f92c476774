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

// The open chunk's bytes: a head buffer grown 16 bytes at a time up to kHeadBytes (little slack
// on a series seen a few times), then fixed blocks added one at a time, never copied: every
// growing chunk asks for the same block size, whatever its size (issue #10).
TEST(GorillaChunk, BufferGrowsByLittleWhenSmallThenByFixedBlocks) {
  GorillaChunk chunk;
  GorillaAppender appender;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> value(0, 1e6);
  size_t capacity = 0, blocks = 0;
  for (int i = 0; i < 256; ++i) {
    appender.append(chunk, 1000 + i * 10, value(rng));  // ~60 bits a point: ~1.9 KiB in all
    ASSERT_GE(appender.capacity, chunk.size());
    if (chunk.size() <= 48) {
      EXPECT_LE(appender.capacity, chunk.size() + 16) << "point " << i;
      EXPECT_FALSE(chunk.chained());
    }
    if (appender.capacity > GorillaChunk::kHeadBytes) {
      EXPECT_TRUE(chunk.chained());
      // Grown by whole blocks: the head, then blocks of kBlockData bytes, the newest in use.
      EXPECT_EQ((appender.capacity - GorillaChunk::kHeadBytes) % GorillaChunk::kBlockData, 0u);
      EXPECT_LT(appender.capacity - chunk.size(), GorillaChunk::kBlockData) << "point " << i;
      if (appender.capacity != capacity) ++blocks;
      EXPECT_EQ(appender.heap_bytes(chunk),
                GorillaChunk::kHeadBytes +
                    (appender.capacity - GorillaChunk::kHeadBytes) /
                        GorillaChunk::kBlockData * GorillaChunk::kBlockBytes);
    }
    capacity = appender.capacity;
  }
  EXPECT_GT(chunk.size(), 1800u);
  EXPECT_EQ(blocks, (capacity - GorillaChunk::kHeadBytes) / GorillaChunk::kBlockData);
  const std::vector<TimedValue> before = decode_chunk(chunk);
  ASSERT_EQ(before.size(), 256u);
  appender.trim(chunk);
  EXPECT_FALSE(chunk.chained());
  EXPECT_EQ(appender.capacity, chunk.size());
  EXPECT_EQ(appender.heap_bytes(chunk), chunk.size());
  expect_same(decode_chunk(chunk), before);
}

// Every chunk length round-trips, whatever byte of the head or of a block its points end in:
// read open (chained), after trim (one buffer), and after being moved.
TEST(GorillaChunk, RoundTripsAtEveryLengthAcrossBlocks) {
  std::mt19937_64 rng(11);
  std::vector<TimedValue> points;
  int64_t ts = 1'700'000'000;
  for (int i = 0; i < 300; ++i) {
    ts += 1 + static_cast<int64_t>(rng() % 3 == 0 ? rng() % 5000 : 10);
    const uint64_t r = rng();
    const double v = r % 4 == 0   ? 42.0
                     : r % 4 == 1 ? static_cast<double>(r % 1000)
                                  : std::bit_cast<double>(rng() >> 2);
    points.push_back({ts, v});
  }
  for (size_t n = 1; n <= points.size(); ++n) {
    const std::vector<TimedValue> want(points.begin(), points.begin() + static_cast<ptrdiff_t>(n));
    GorillaChunk chunk;
    GorillaAppender appender;
    for (const TimedValue& p : want) appender.append(chunk, p.ts, p.value);
    expect_same(decode_chunk(chunk), want);
    GorillaChunk moved = std::move(chunk);
    expect_same(decode_chunk(moved), want);
    appender.trim(moved);
    expect_same(decode_chunk(moved), want);
    if (::testing::Test::HasFailure()) FAIL() << "length " << n;
  }
}

// A trimmed chunk that takes appends again (not something HistoryTier does: a closed chunk is
// only rewritten) continues correctly, whatever its size (review: a trimmed buffer of more than
// 64 bytes was linked as if it were a 64-byte head).
TEST(GorillaChunk, AppendsAfterTrimContinueTheChunk) {
  std::mt19937_64 rng(13);
  for (int first = 1; first <= 40; ++first) {
    std::vector<TimedValue> points;
    GorillaChunk chunk;
    GorillaAppender appender;
    for (int i = 0; i < first + 30; ++i) {
      const TimedValue p{1000 + i * 10, std::bit_cast<double>(rng() >> 1)};
      points.push_back(p);
      appender.append(chunk, p.ts, p.value);
      if (i + 1 == first) appender.trim(chunk);
    }
    expect_same(decode_chunk(chunk), points);
    appender.trim(chunk);
    expect_same(decode_chunk(chunk), points);
    if (::testing::Test::HasFailure()) FAIL() << "trimmed after " << first << " points";
  }
}

// Decimal values (a rate at 10 s: a count over 10) are coded as the change of value * 10^k.
TEST(GorillaChunk, DecimalsCostAFewBitsAPointAndRoundTrip) {
  std::mt19937_64 rng(3);
  std::vector<TimedValue> rates, noise_after_decimal, noise;
  double count = 5000;
  std::uniform_real_distribution<double> u(0, 1);
  for (int i = 0; i < 256; ++i) {
    count += static_cast<double>(rng() % 100) - 40;  // a count that changes every interval
    rates.push_back({1000 + i * 10, count / 10});    // as the engine's rate: delta / 10 s
    noise.push_back({1000 + i * 10, u(rng) * 1e3});
  }
  noise_after_decimal = noise;
  noise_after_decimal[0].value = 12.5;  // a decimal first value, then EWMA-like noise
  GorillaChunk decimal_chunk;
  GorillaAppender decimal_appender;
  for (const TimedValue& p : rates) decimal_appender.append(decimal_chunk, p.ts, p.value);
  expect_same(decode_chunk(decimal_chunk), rates);
  // 1 bit of time and '10' + '10' + 12 bits at most of value a point (XOR: ~55 bits).
  EXPECT_LE(decimal_chunk.bits, 64u + 10 + 255u * 17);
  // Noise after a decimal first value pays 2 bits for the two values that end the mode.
  const std::vector<TimedValue> got = round_trip(noise_after_decimal);
  expect_same(got, noise_after_decimal);
  GorillaChunk a, b;
  GorillaAppender aa, ba;
  for (const TimedValue& p : noise) aa.append(a, p.ts, p.value);
  for (const TimedValue& p : noise_after_decimal) ba.append(b, p.ts, p.value);
  EXPECT_LE(b.bits, a.bits + 2 + 64);  // the first value's XOR differs: its window too
}

// Every value comes back bit for bit in decimal mode: scale changes (12.3, then 12.35),
// integers, -0.0 (no decimal: its sign), NaN, infinities, huge values, a miss then a decimal
// again, and runs of misses that end the mode.
TEST(GorillaChunk, DecimalModeEdgesRoundTrip) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<std::vector<double>> cases = {
      {12.3, 12.35, 12.4, 1, 2, 3, 0.125, 0.1, 0.2, 0.30000000000000004, 0.3},
      {0, -0.0, 0, -0.0, -1.5, 1.5, -1e-6, 1e-6, 2e-7},
      {1, nan, 2, inf, 3, -inf, 4, 1e300, 5, 1.0 / 3, 6, 7},
      {1, 1.0 / 3, 2, 2.0 / 3, 3},
      {1, 1.0 / 3, 2.0 / 3, 4, 5, 6},  // two misses in a row: plain from there
      {1099511627775.0, 1099511627776.0, -1099511627775.0, 9.0e15, 1, 2},
      {5e-7, 1e-6, 1.5e-6, 123456.789012, 123456.789013, 0.1 + 0.2},
  };
  for (const std::vector<double>& values : cases) {
    std::vector<TimedValue> points;
    for (size_t i = 0; i < values.size(); ++i)
      points.push_back({static_cast<int64_t>(100 + 10 * i), values[i]});
    expect_same(round_trip(points), points);
    // The same values after a noisy first one (plain mode from the start).
    points.insert(points.begin(), TimedValue{90, std::bit_cast<double>(uint64_t{0x400921FB54442D18})});
    expect_same(round_trip(points), points);
  }
  std::mt19937_64 rng(5);
  // Random decimals, integers and noise; noise never twice in a row in `single` (the chunk
  // stays in decimal mode), freely in `mixed`.
  for (bool single : {true, false}) {
    std::vector<TimedValue> points;
    bool last_noise = false;
    for (int i = 0; i < 2000; ++i) {
      const uint64_t r = rng() % 3;
      const bool noise = r == 2 && !(single && last_noise);
      const double v = noise    ? std::bit_cast<double>(rng())
                       : r == 0 ? static_cast<double>(rng() % 100000) / 100
                                : static_cast<double>(static_cast<int64_t>(rng() % 2000) - 1000);
      last_noise = noise;
      points.push_back({1000 + i, v});
    }
    expect_same(round_trip(points), points);
  }
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
