// CborWriter writes what nlohmann::json::from_cbor reads back, at every head-size boundary,
// across its buffer growth, and after bytes already in the vector.
#include "server/cbor_writer.h"
#include "server/wal.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace statherd::server {
namespace {

using nlohmann::json;

TEST(CborWriter, IntegersAtEveryHeadBoundaryReadBack) {
  const std::vector<uint64_t> u = {0, 23, 24, 255, 256, 65535, 65536, 0xFFFFFFFFull,
                                   0x100000000ull, std::numeric_limits<uint64_t>::max()};
  const std::vector<int64_t> s = {-1, -24, -25, -256, -257, -65536, -65537,
                                  std::numeric_limits<int64_t>::min()};
  std::vector<uint8_t> bytes;
  {
    CborWriter w(bytes);
    w.array(u.size() + s.size());
    for (uint64_t v : u) w.uint(v);
    for (int64_t v : s) w.integer(v);
  }
  const json j = json::from_cbor(bytes);
  ASSERT_EQ(j.size(), u.size() + s.size());
  for (size_t i = 0; i < u.size(); ++i) EXPECT_EQ(j[i].get<uint64_t>(), u[i]) << i;
  for (size_t i = 0; i < s.size(); ++i) EXPECT_EQ(j[u.size() + i].get<int64_t>(), s[i]) << i;
  // The same bytes nlohmann writes for integers (CBOR's shortest head).
  std::vector<uint8_t> one;
  {
    CborWriter w(one);
    w.uint(65536);
  }
  EXPECT_EQ(one, json::to_cbor(json(65536)));
}

TEST(CborWriter, StringsFloatsAndMapsReadBackAcrossGrowth) {
  std::vector<uint8_t> bytes;
  const int n = 5000;  // far beyond the first growth
  {
    CborWriter w(bytes);
    w.map(2);
    w.text("items");
    w.array(n);
    for (int i = 0; i < n; ++i) {
      w.array(5);
      w.bytes(std::string(static_cast<size_t>(i % 300), static_cast<char>('a' + i % 26)));
      w.float64(i * 0.25 - 7.5);
      w.boolean(i % 2 == 0);
      w.null();
      w.raw(json::to_cbor(json{{"k", i}}));
    }
    w.text("");
    w.float64(std::numeric_limits<double>::infinity());
  }
  const json j = json::from_cbor(bytes);
  ASSERT_EQ(j.at("items").size(), static_cast<size_t>(n));
  for (int i = 0; i < n; i += 97) {
    const json& x = j["items"][static_cast<size_t>(i)];
    EXPECT_EQ(x[0].get_binary().size(), static_cast<size_t>(i % 300));
    if (i % 300) {
      EXPECT_EQ(x[0].get_binary()[0], static_cast<uint8_t>('a' + i % 26));
    }
    EXPECT_EQ(x[1].get<double>(), i * 0.25 - 7.5);
    EXPECT_EQ(x[2].get<bool>(), i % 2 == 0);
    EXPECT_TRUE(x[3].is_null());
    EXPECT_EQ(x[4].at("k").get<int>(), i);
  }
  EXPECT_TRUE(std::isinf(j.at("").get<double>()));
}

TEST(CborWriter, AppendsAfterBytesAlreadyThereAndKeepsOnlyWhatItWrote) {
  std::vector<uint8_t> bytes = {0xAB, 0xCD};
  {
    CborWriter w(bytes);
    w.uint(7);
    w.finish();
    EXPECT_EQ(bytes, (std::vector<uint8_t>{0xAB, 0xCD, 0x07}));
    w.uint(24);  // after finish(): appended, and cut to size again at destruction
  }
  EXPECT_EQ(bytes, (std::vector<uint8_t>{0xAB, 0xCD, 0x07, 0x18, 0x18}));
}

// The snapshot streams through a spill function: the pieces, in order, are the bytes a writer
// without one produces, and the CRC taken piece by piece is the whole one's.
TEST(CborWriter, SpilledPiecesConcatenateToTheSameBytesAndCrc) {
  auto write = [](CborWriter& w) {
    w.array(3000);
    for (int i = 0; i < 3000; ++i) {
      w.array(3);
      w.uint(static_cast<uint64_t>(i) * 977);
      w.bytes(std::string(static_cast<size_t>(i % 90), 'x'));
      w.float64(i / 3.0);
    }
  };
  std::vector<uint8_t> whole;
  {
    CborWriter w(whole);
    write(w);
  }
  std::vector<uint8_t> buffer, spilled;
  size_t pieces = 0;
  uint32_t crc = 0;
  {
    CborWriter w(buffer, [&](std::span<const uint8_t> part) {
      spilled.insert(spilled.end(), part.begin(), part.end());
      crc = crc32_ieee_update(crc, {reinterpret_cast<const char*>(part.data()), part.size()});
      ++pieces;
    }, 1000);
    write(w);
    w.finish();
  }
  EXPECT_GT(pieces, 20u);
  EXPECT_LT(buffer.size(), 1000u + 100);  // what is left after the last spill
  spilled.insert(spilled.end(), buffer.begin(), buffer.end());
  crc = crc32_ieee_update(crc, {reinterpret_cast<const char*>(buffer.data()), buffer.size()});
  EXPECT_EQ(spilled, whole);
  EXPECT_EQ(crc, crc32_ieee({reinterpret_cast<const char*>(whole.data()), whole.size()}));
  EXPECT_EQ(crc32_ieee_update(0, ""), 0u);
}

}  // namespace
}  // namespace statherd::server
