// statherd v2 parser: hand-built files (docs/FORMAT.md byte by byte), torn and hostile input.
#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <random>
#include <thread>

#include "agent/sources/statherd_v2.h"
#include "statherd_v2_builder.h"

namespace statherd::agent {
namespace {

using testing::V2FileBuilder;

std::span<const uint8_t> span_of(V2FileBuilder& b) { return {b.bytes(), b.size()}; }

std::vector<Sample> samples_of(std::span<const uint8_t> bytes) {
  auto file = parse_statherd_v2(bytes);
  EXPECT_TRUE(file.ok()) << (file.ok() ? "" : file.error().to_string());
  std::vector<Sample> out;
  if (!file) return out;
  for (size_t i = 0; i < file->records.size(); ++i) {
    Sample s;
    auto st = statherd_v2_sample(file->records[i], file->values[i], s);
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().to_string());
    out.push_back(std::move(s));
  }
  return out;
}

TEST(StatherdV2Parser, ReadsHeader) {
  V2FileBuilder b(4242, 1700000000123, "web-app");
  auto h = parse_statherd_v2_header(span_of(b));
  ASSERT_TRUE(h.ok()) << h.error().to_string();
  EXPECT_EQ(h->pid, 4242);
  EXPECT_EQ(h->start_time_ms, 1700000000123);
  EXPECT_EQ(h->app, "web-app");
  EXPECT_EQ(h->used, 256u);
  EXPECT_EQ(h->version, 2u);
}

TEST(StatherdV2Parser, ReadsEveryKind) {
  V2FileBuilder b(7, 1, "app");
  b.add_number(1, "requests", {}, 42);
  b.add_number(2, "queue.depth", {}, -1.5);
  b.add_text("version", "1.2.3");
  const std::vector<double> values = {0.001, 0.002, 0.5, 3, 3, 250, 0};
  b.add_histogram("latency", {}, values);
  auto s = samples_of(span_of(b));
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].name, "requests");
  EXPECT_EQ(s[0].kind, Kind::Counter);
  EXPECT_EQ(s[0].value, 42);
  EXPECT_EQ(s[1].kind, Kind::Gauge);
  EXPECT_EQ(s[1].value, -1.5);
  EXPECT_EQ(s[2].kind, Kind::Text);
  EXPECT_EQ(s[2].text, "1.2.3");
  ASSERT_EQ(s[3].kind, Kind::Distribution);
  ASSERT_TRUE(s[3].dist);
  ASSERT_EQ(s[3].dist->form, Distribution::Form::Sketch);
  Sketch expected;
  for (double v : values) expected.add(v);
  const Sketch& got = s[3].dist->sketch;
  EXPECT_EQ(got.count(), 7);
  EXPECT_DOUBLE_EQ(got.sum(), expected.sum());
  EXPECT_EQ(got.min(), 0);
  EXPECT_EQ(got.max(), 250);
  EXPECT_EQ(got.zero_count(), 1);
  EXPECT_EQ(got.positive(), expected.positive());  // trimmed to the same buckets
  EXPECT_TRUE(got.negative().counts.empty());
  for (double q : {0.0, 0.25, 0.5, 0.9, 0.99, 1.0}) EXPECT_EQ(got.quantile(q), expected.quantile(q)) << q;
}

TEST(StatherdV2Parser, TagsAreSortedByKeyAndLastDuplicateWins) {
  V2FileBuilder b(7, 1, "app");
  b.add_number(1, "hits", {{"z", "1"}, {"method", "GET"}, {"code", ""}, {"z", "2"}}, 1);
  auto s = samples_of(span_of(b));
  ASSERT_EQ(s.size(), 1u);
  const Tags expected = {{"code", ""}, {"method", "GET"}, {"z", "2"}};
  EXPECT_EQ(s[0].tags, expected);
}

TEST(StatherdV2Parser, EmptyHistogramIsReportedWithCountZero) {
  V2FileBuilder b(7, 1, "app");
  const double inf = std::numeric_limits<double>::infinity();
  b.add_raw_histogram("idle", {}, {0, 0, inf, -inf, 0}, -10, std::vector<double>(20, 0.0));
  auto s = samples_of(span_of(b));
  ASSERT_EQ(s.size(), 1u);
  ASSERT_TRUE(s[0].dist);
  EXPECT_TRUE(s[0].dist->sketch.empty());
  EXPECT_EQ(s[0].dist->sketch.count(), 0);
}

TEST(StatherdV2Parser, InconsistentHistogramIsAnErrorForThatField) {
  V2FileBuilder b(7, 1, "app");
  b.add_raw_histogram("bad", {}, {5, 10, 1, 2, 0}, 0, {1, 1});  // count 5, buckets hold 2
  auto file = parse_statherd_v2(span_of(b));
  ASSERT_TRUE(file.ok());
  Sample s;
  auto st = statherd_v2_sample(file->records[0], file->values[0], s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("\"bad\""), std::string::npos);
  EXPECT_NE(st.error().message.find("offset 256"), std::string::npos);
}

TEST(StatherdV2Parser, HistogramWiderThanTheSketchCapFoldsItsLowestBuckets) {
  V2FileBuilder b(7, 1, "app");
  std::vector<double> counts(5000, 1.0);
  b.add_raw_histogram("wide", {}, {5000, 1, 1e-6, 1e30, 0}, -600, counts);
  auto s = samples_of(span_of(b));
  ASSERT_EQ(s.size(), 1u);
  const auto& pos = s[0].dist->sketch.positive();
  EXPECT_EQ(pos.counts.size(), static_cast<size_t>(Sketch::kDefaultMaxBuckets));
  EXPECT_EQ(pos.counts[0], 5000 - Sketch::kDefaultMaxBuckets + 1);
  EXPECT_EQ(s[0].dist->sketch.count(), 5000);
}

TEST(StatherdV2Parser, RecordsPastUsedAreInvisibleUntilPublished) {
  V2FileBuilder b(7, 1, "app");
  b.add_number(1, "a", {}, 1);
  const uint64_t first_end = b.end();
  b.add_number(2, "b", {}, 2, /*publish=*/false);
  auto file = parse_statherd_v2(span_of(b));
  ASSERT_TRUE(file.ok());
  ASSERT_EQ(file->records.size(), 1u);
  b.publish_all();
  auto header = parse_statherd_v2_header(span_of(b));
  ASSERT_TRUE(header.ok());
  // Incremental: only the new records, from where the last parse stopped.
  std::vector<StatherdV2Record> records = file->records;
  ASSERT_TRUE(parse_statherd_v2_records(span_of(b), first_end, header->used, records).ok());
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].name, "b");
  EXPECT_EQ(records[1].offset, first_end);
}

TEST(StatherdV2Parser, OddSeqRetriesThenErrors) {
  V2FileBuilder b(7, 1, "app");
  b.add_number(1, "stuck", {}, 1);
  b.set_seq(0, 3);  // a writer that died inside its update
  auto file = parse_statherd_v2(span_of(b));
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.error().message.find("\"stuck\""), std::string::npos);
  EXPECT_NE(file.error().message.find("8 tries"), std::string::npos);
  b.set_seq(0, 4);  // finished: readable again
  EXPECT_TRUE(parse_statherd_v2(span_of(b)).ok());
}

// A writer thread updates a histogram under the seq protocol (count, sum and the bucket move
// together); every value the reader accepts must be one the writer completed.
TEST(StatherdV2Parser, ConcurrentWriterIsNeverReadTorn) {
  V2FileBuilder b(7, 1, "app");
  b.add_raw_histogram("h", {}, {0, 0, 1, 1, 0}, 0, {0, 0, 0, 0});
  auto file = parse_statherd_v2(span_of(b));
  ASSERT_TRUE(file.ok());
  const StatherdV2Record rec = file->records[0];
  uint8_t* base = b.bytes();
  auto* seq = reinterpret_cast<uint64_t*>(base + rec.seq_offset);
  auto* area = reinterpret_cast<double*>(base + rec.seq_offset + 8);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> last_written{0};
  std::thread writer([&] {
    for (uint64_t n = 1; !stop.load(std::memory_order_relaxed) && n < 2'000'000; ++n) {
      __atomic_store_n(seq, 2 * n - 1, __ATOMIC_RELAXED);
      std::atomic_thread_fence(std::memory_order_release);
      __atomic_store_n(reinterpret_cast<uint64_t*>(&area[0]), std::bit_cast<uint64_t>(static_cast<double>(n)), __ATOMIC_RELAXED);
      __atomic_store_n(reinterpret_cast<uint64_t*>(&area[1]), std::bit_cast<uint64_t>(static_cast<double>(n)), __ATOMIC_RELAXED);
      __atomic_store_n(reinterpret_cast<uint64_t*>(&area[6 + 1]), std::bit_cast<uint64_t>(static_cast<double>(n)), __ATOMIC_RELAXED);
      __atomic_store_n(seq, 2 * n, __ATOMIC_RELEASE);
      last_written.store(n, std::memory_order_relaxed);
      std::this_thread::yield();  // let readers in between updates (not a synchronisation)
    }
  });
  StatherdV2Value v;
  for (int i = 0; i < 20000; ++i) {
    if (!read_statherd_v2_value(span_of(b), rec, v).ok()) continue;  // kept changing: skipped
    ASSERT_EQ(v.count, v.sum);
    ASSERT_EQ(v.counts[1], v.count);
  }
  stop = true;
  writer.join();
  ASSERT_TRUE(read_statherd_v2_value(span_of(b), rec, v).ok());  // quiet now: must succeed
  EXPECT_EQ(v.count, static_cast<double>(last_written.load()));
  EXPECT_EQ(v.counts[1], v.count);
}

TEST(StatherdV2Parser, BadMagicVersionAndShortHeaderAreErrors) {
  V2FileBuilder b(7, 1, "app");
  b.bytes()[3] = 'X';
  EXPECT_NE(parse_statherd_v2(span_of(b)).error().message.find("magic"), std::string::npos);
  V2FileBuilder c(7, 1, "app");
  c.put32(8, 3);
  EXPECT_NE(parse_statherd_v2(span_of(c)).error().message.find("version 3"), std::string::npos);
  V2FileBuilder d(7, 1, "app");
  EXPECT_FALSE(parse_statherd_v2(span_of(d).first(255)).ok());
  d.set_used(4096);
  EXPECT_NE(parse_statherd_v2(span_of(d)).error().message.find("past the end"), std::string::npos);
}

TEST(StatherdV2Parser, HostileRecordSizesAreErrorsWithOffsets) {
  const std::vector<std::pair<uint32_t, std::string>> sizes = {
      {13, "multiple of 8"}, {0, "smaller than"}, {8, "smaller than"}, {0xFFFFFFF8u, "past `used`"}};
  for (const auto& [size, why] : sizes) {
    V2FileBuilder b(7, 1, "app");
    b.add_number(1, "a", {}, 1);
    b.add_number(1, "b", {}, 2);
    const size_t second = b.seq_offset(1) - 16;  // "b": 12-byte head + name padded to 16
    b.put32(second, size);
    auto file = parse_statherd_v2(span_of(b));
    ASSERT_FALSE(file.ok()) << size;
    EXPECT_NE(file.error().message.find(why), std::string::npos) << file.error().message;
    EXPECT_NE(file.error().message.find("offset " + std::to_string(second)), std::string::npos);
  }
}

TEST(StatherdV2Parser, HostileLengthsInsideRecordsAreErrors) {
  V2FileBuilder names(7, 1, "app");
  names.add_number(1, "abc", {}, 1);
  names.put16(256 + 6, 0xFFFF);  // name_len past the record
  EXPECT_FALSE(parse_statherd_v2(span_of(names)).ok());
  V2FileBuilder tags(7, 1, "app");
  tags.add_number(1, "abc", {{"k", "v"}}, 1);
  tags.bytes()[256 + 12 + 3 + 3] = 'x';  // the value's NUL terminator
  EXPECT_NE(parse_statherd_v2(span_of(tags)).error().message.find("NUL"), std::string::npos);
  V2FileBuilder buckets(7, 1, "app");
  buckets.add_raw_histogram("h", {}, {0, 0, 0, 0, 0}, 0, {0, 0});
  buckets.put32(buckets.seq_offset(0) + 8 + 44, 0xFFFFFFFFu);  // n_buckets
  EXPECT_NE(parse_statherd_v2(span_of(buckets)).error().message.find("buckets"), std::string::npos);
  V2FileBuilder text(7, 1, "app");
  text.add_text("t", "hello", 8);
  text.put32(text.seq_offset(0) + 8, 0x7FFFFFFFu);  // capacity
  EXPECT_NE(parse_statherd_v2(span_of(text)).error().message.find("capacity"), std::string::npos);
  V2FileBuilder length(7, 1, "app");
  length.add_text("t", "hello", 8);
  length.put32(length.seq_offset(0) + 12, 9);  // length > capacity
  EXPECT_FALSE(parse_statherd_v2(span_of(length)).ok());
}

TEST(StatherdV2Parser, EveryTruncationAndRandomByteFlipNeverCrashes) {
  V2FileBuilder b(7, 1, "app");
  b.add_number(1, "requests", {{"method", "GET"}}, 42);
  b.add_text("version", "1.2.3");
  b.add_histogram("latency", {{"route", "/"}}, {0.1, 0.2, 0.3}, -20, 20);
  const std::vector<uint8_t> good = b.file_bytes(8);
  for (size_t n = 0; n <= good.size(); ++n) (void)parse_statherd_v2({good.data(), n});
  std::mt19937 rng(12345);
  for (int round = 0; round < 20000; ++round) {
    std::vector<uint8_t> bad = good;
    for (int flips = 0; flips < 4; ++flips) bad[rng() % bad.size()] = static_cast<uint8_t>(rng());
    auto file = parse_statherd_v2(bad);
    if (!file) continue;
    for (size_t i = 0; i < file->records.size(); ++i) {
      Sample s;
      (void)statherd_v2_sample(file->records[i], file->values[i], s);
    }
  }
  std::vector<uint8_t> garbage(4096);
  for (auto& byte : garbage) byte = static_cast<uint8_t>(rng());
  EXPECT_FALSE(parse_statherd_v2(garbage).ok());
}

TEST(StatherdV2Parser, UnknownKindIsSkipped) {
  V2FileBuilder b(7, 1, "app");
  b.add_number(9, "from.the.future", {}, 1);
  b.add_number(1, "known", {}, 2);
  auto s = samples_of(span_of(b));
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].name, "known");
}

}  // namespace
}  // namespace statherd::agent
