#include "common/wire.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace statherd {
namespace {

Batch sample_batch() {
  Batch b;
  b.agent_id = "web-1";
  b.seq = 123456789012ULL;
  b.sent_ms = 1'764'000'000'123;
  SourceSamples src;
  src.id = {"web-1", "api", 4242, 1'763'999'000'000, "/tmp/api-4242-4242.mmstats"};
  src.fresh = true;
  Sample c{"requests.count", {}, Kind::Counter, b.sent_ms, 17, {}, nullptr};
  Sample g{"queue depth", {{"shard", "a"}, {"zone", "x=y;z"}}, Kind::Gauge, -5, -2.5, {}, nullptr};
  Sample t{"version", {}, Kind::Text, b.sent_ms, 0, "1.2.3\nnewline", nullptr};
  auto sk = std::make_shared<Distribution>();
  sk->form = Distribution::Form::Sketch;
  for (int i = 1; i <= 1000; ++i) sk->sketch.add(i * 0.37);
  sk->sketch.add(-3);
  sk->sketch.add(0);
  Sample d{"latency", {}, Kind::Distribution, b.sent_ms, 0, {}, sk};
  auto bk = std::make_shared<Distribution>();
  bk->form = Distribution::Form::Buckets;
  bk->bucket_upper_bounds = {0.1, 1, std::numeric_limits<double>::infinity()};
  bk->bucket_counts = {3, 4, 1};
  bk->count = 8;
  bk->sum = 5.5;
  Sample h{"hist", {{"le_style", "prom"}}, Kind::Distribution, b.sent_ms, 0, {}, bk};
  auto sm = std::make_shared<Distribution>();
  sm->form = Distribution::Form::Summary;
  sm->count = 10;
  sm->sum = 20;
  sm->min = 1;
  sm->max = 3;
  sm->quantiles = {{0.5, 2}, {0.99, 2.9}};
  Sample s{"pmf", {}, Kind::Distribution, b.sent_ms, 0, {}, sm};
  src.samples = {c, g, t, d, h, s};
  b.sources.push_back(src);
  SourceSamples other;
  other.id = {"web-1", "worker", -1, 0, "http://127.0.0.1:9000/status/"};
  b.sources.push_back(other);
  b.errors.push_back({"/tmp/bad-1-1.mmstats", "truncated field at offset 12"});
  return b;
}

TEST(Wire, RoundTripsEveryKindAndForm) {
  Batch b = sample_batch();
  std::string bytes = encode_batch(b);
  auto back = decode_batch(bytes);
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(back->agent_id, b.agent_id);
  EXPECT_EQ(back->seq, b.seq);
  EXPECT_EQ(back->sent_ms, b.sent_ms);
  ASSERT_EQ(back->sources.size(), 2u);
  EXPECT_EQ(back->sources[0].id, b.sources[0].id);
  EXPECT_TRUE(back->sources[0].fresh);
  EXPECT_FALSE(back->sources[1].fresh);
  ASSERT_EQ(back->sources[0].samples.size(), b.sources[0].samples.size());
  for (size_t i = 0; i < b.sources[0].samples.size(); ++i)
    EXPECT_EQ(back->sources[0].samples[i], b.sources[0].samples[i]) << "sample " << i;
  const auto& sk = back->sources[0].samples[3].dist->sketch;
  EXPECT_EQ(sk.count(), 1002);
  EXPECT_NEAR(sk.quantile(0.5), b.sources[0].samples[3].dist->sketch.quantile(0.5), 1e-12);
  EXPECT_EQ(back->errors.size(), 1u);
  EXPECT_EQ(back->errors[0].message, "truncated field at offset 12");
  EXPECT_EQ(back->sample_count(), 6u);
}

TEST(Wire, FloatsAreLittleEndianOnTheWire) {
  Batch b;
  b.agent_id = "a";
  SourceSamples src;
  src.samples.push_back(Sample{"x", {}, Kind::Gauge, 0, 1.0, {}, nullptr});
  b.sources.push_back(src);
  std::string bytes = encode_batch(b);
  // 1.0 is 00 00 00 00 00 00 f0 3f in little-endian binary64; it is followed by n_errors = 0.
  ASSERT_GE(bytes.size(), 9u);
  EXPECT_EQ(bytes.substr(bytes.size() - 9, 8), std::string("\0\0\0\0\0\0\xf0\x3f", 8));
}

TEST(Wire, EveryTruncationIsAnErrorNotACrash) {
  std::string bytes = encode_batch(sample_batch());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = decode_batch(std::string_view(bytes.data(), n));
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes decoded";
  }
}

TEST(Wire, RejectsBadMagicVersionAndTrailingBytes) {
  std::string bytes = encode_batch(sample_batch());
  std::string bad = bytes;
  bad[0] = 'X';
  EXPECT_NE(decode_batch(bad).error().message.find("magic"), std::string::npos);
  bad = bytes;
  bad[3] = 9;
  EXPECT_NE(decode_batch(bad).error().message.find("version"), std::string::npos);
  EXPECT_NE(decode_batch(bytes + "x").error().message.find("trailing"), std::string::npos);
}

TEST(Wire, HostileCountsFailBeforeAllocating) {
  // Header, agent id "a", seq 0, sent 0, then a source count of 2^62.
  std::string b("SHB\x01\x01" "a" "\x00\x00", 8);
  b += std::string("\x80\x80\x80\x80\x80\x80\x80\x80\x40", 9);
  auto r = decode_batch(b);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("source count"), std::string::npos) << r.error().message;

  // A string length far past the payload.
  std::string s("SHB\x01\xff\xff\xff\x7f", 8);
  auto r2 = decode_batch(s);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().message.find("string"), std::string::npos) << r2.error().message;
}

TEST(Wire, StartIsFileBirthFlagRoundTrips) {
  Batch b = sample_batch();
  b.sources[0].start_is_file_birth = true;
  auto r = decode_batch(encode_batch(b));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->sources[0].start_is_file_birth);
  EXPECT_EQ(r->sources[0].fresh, b.sources[0].fresh);
  if (r->sources.size() > 1) {
    EXPECT_FALSE(r->sources[1].start_is_file_birth);
  }
}

TEST(Wire, LimitsAreEnforced) {
  Batch b = sample_batch();
  std::string bytes = encode_batch(b);
  WireLimits tight;
  tight.max_samples = 3;
  bool over_limit = false;
  auto r = decode_batch(bytes, tight, &over_limit);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("over limit"), std::string::npos) << r.error().message;
  EXPECT_TRUE(over_limit) << "too many samples: too large (split it), not malformed";
  tight = WireLimits{};
  tight.max_sources = 0;
  EXPECT_FALSE(decode_batch(bytes, tight, &over_limit).ok());
  EXPECT_TRUE(over_limit) << "too many sources: too large, not malformed";
  tight = WireLimits{};
  tight.max_string = 8;
  EXPECT_FALSE(decode_batch(bytes, tight, &over_limit).ok());
  EXPECT_FALSE(over_limit) << "a string over the limit is not cured by splitting";
  // A sample count the payload cannot hold is malformed, whatever the limit.
  std::string cut = bytes.substr(0, bytes.size() / 2);
  tight = WireLimits{};
  tight.max_samples = 1;
  EXPECT_FALSE(decode_batch(cut, tight, &over_limit).ok());
}

TEST(Wire, RejectsInconsistentDistributions) {
  Batch b;
  b.agent_id = "a";
  SourceSamples src;
  auto bk = std::make_shared<Distribution>();
  bk->form = Distribution::Form::Buckets;
  bk->bucket_upper_bounds = {1, 0.5};  // not ascending
  bk->bucket_counts = {1, 1};
  bk->count = 2;
  src.samples.push_back(Sample{"h", {}, Kind::Distribution, 0, 0, {}, bk});
  b.sources.push_back(src);
  auto r = decode_batch(encode_batch(b));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("ascending"), std::string::npos);
}

TEST(Wire, MutatedPayloadsNeverCrash) {
  std::string bytes = encode_batch(sample_batch());
  uint32_t state = 12345;
  for (int round = 0; round < 20000; ++round) {
    std::string m = bytes;
    for (int k = 0; k < 3; ++k) {
      state = state * 1103515245u + 12345u;
      size_t pos = 4 + (state >> 8) % (m.size() - 4);
      m[pos] = static_cast<char>(state >> 24);
    }
    auto r = decode_batch(m);  // must not crash, leak or read out of bounds (ASan in CI)
    if (r.ok()) {
      EXPECT_LE(r->sample_count(), 6u);
    }
  }
}

TEST(Wire, DecodesABatchOfThreeEmptySources) {
  // An empty source is 7 bytes on the wire (five 1-byte fields, flags, sample count 0); the
  // decoder used to require 8 per source and refused what the encoder made.
  Batch b;
  b.agent_id = "a";
  for (int i = 0; i < 3; ++i) b.sources.push_back(SourceSamples{});
  auto r = decode_batch(encode_batch(b));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->sources.size(), 3u);
}

TEST(Wire, DecodesTextSamplesWithEmptyText) {
  // The smallest sample: 1-byte name, no tags, kind, timestamp 0, empty text = 6 bytes.
  Batch b;
  b.agent_id = "a";
  SourceSamples src;
  for (int i = 0; i < 4; ++i) src.samples.push_back(Sample{"v", {}, Kind::Text, 0, 0, "", nullptr});
  b.sources.push_back(src);
  auto r = decode_batch(encode_batch(b));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->sample_count(), 4u);
}

TEST(Wire, RejectsNonFiniteCountersAndGaugesNamingTheSample) {
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()}) {
    for (Kind kind : {Kind::Counter, Kind::Gauge}) {
      Batch b;
      b.agent_id = "a";
      SourceSamples src;
      src.samples.push_back(Sample{"ok.count", {}, kind, 0, 1, {}, nullptr});
      src.samples.push_back(Sample{"poison.count", {}, kind, 0, bad, {}, nullptr});
      b.sources.push_back(src);
      auto r = decode_batch(encode_batch(b));
      ASSERT_FALSE(r.ok());
      EXPECT_NE(r.error().message.find("'poison.count'"), std::string::npos) << r.error().message;
      EXPECT_NE(r.error().message.find("non-finite"), std::string::npos) << r.error().message;
    }
  }
}

TEST(Wire, RejectsNonFiniteSummaryAndHistogramValues) {
  auto batch_of = [](std::shared_ptr<Distribution> d) {
    Batch b;
    b.agent_id = "a";
    SourceSamples src;
    src.samples.push_back(Sample{"lat", {}, Kind::Distribution, 0, 0, {}, std::move(d)});
    b.sources.push_back(src);
    return encode_batch(b);
  };
  auto sm = std::make_shared<Distribution>();
  sm->form = Distribution::Form::Summary;
  sm->count = 2;
  sm->sum = 3;
  sm->min = std::nan("");  // unknown min/max is allowed
  sm->max = std::nan("");
  sm->quantiles = {{0.5, 1.5}};
  EXPECT_TRUE(decode_batch(batch_of(sm)).ok());
  sm->quantiles = {{0.5, std::numeric_limits<double>::infinity()}};
  auto r = decode_batch(batch_of(sm));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("'lat'"), std::string::npos) << r.error().message;
  sm->quantiles = {};
  sm->sum = std::nan("");
  EXPECT_FALSE(decode_batch(batch_of(sm)).ok());
  auto bk = std::make_shared<Distribution>();
  bk->form = Distribution::Form::Buckets;
  bk->bucket_upper_bounds = {1};
  bk->bucket_counts = {1};
  bk->count = 1;
  bk->sum = -std::numeric_limits<double>::infinity();
  EXPECT_FALSE(decode_batch(batch_of(bk)).ok());
}

// A distribution whose sum is not known (a prometheus_client _sum gone NaN, a Scales PMF)
// carries bit 7 of its form byte; its count, buckets and quantiles travel as before.
TEST(Wire, SumUnknownFlagRoundTripsForBucketsAndSummaries) {
  auto batch_of = [](std::shared_ptr<Distribution> d) {
    Batch b;
    b.agent_id = "a";
    SourceSamples src;
    src.samples.push_back(Sample{"lat", {}, Kind::Distribution, 0, 0, {}, std::move(d)});
    b.sources.push_back(src);
    return encode_batch(b);
  };
  auto bk = std::make_shared<Distribution>();
  bk->form = Distribution::Form::Buckets;
  bk->bucket_upper_bounds = {0.01, 0.1, std::numeric_limits<double>::infinity()};
  bk->bucket_counts = {300, 601, 0};
  bk->count = 901;
  bk->set_sum_or_unknown(std::nan(""));
  EXPECT_TRUE(bk->sum_unknown);
  std::string bytes = batch_of(bk);
  auto back = decode_batch(bytes);
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  const Distribution& d = *back->sources[0].samples[0].dist;
  EXPECT_TRUE(d.sum_unknown);
  EXPECT_EQ(d.count, 901);
  EXPECT_EQ(d.bucket_counts, bk->bucket_counts);
  EXPECT_EQ(d, *bk);
  // The flag is bit 7 of the form byte; without it the same bytes say sum 0, known.
  size_t form_at = bytes.find(static_cast<char>(0x82));
  ASSERT_NE(form_at, std::string::npos);
  bytes[form_at] = 0x02;
  auto plain = decode_batch(bytes);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->sources[0].samples[0].dist->sum_unknown);

  auto sm = std::make_shared<Distribution>();
  sm->form = Distribution::Form::Summary;
  sm->count = 40;
  sm->min = std::nan("");
  sm->max = std::nan("");
  sm->quantiles = {{0.5, 0.25}};
  sm->set_sum_or_unknown(std::numeric_limits<double>::infinity());
  auto sback = decode_batch(batch_of(sm));
  ASSERT_TRUE(sback.ok()) << sback.error().to_string();
  EXPECT_TRUE(sback->sources[0].samples[0].dist->sum_unknown);
  EXPECT_EQ(sback->sources[0].samples[0].dist->count, 40);
  EXPECT_EQ(sback->sources[0].samples[0].dist->quantiles, sm->quantiles);
  // Without the flag a non-finite sum is still refused (RejectsNonFiniteSummaryAndHistogramValues).
  sm->sum_unknown = false;
  sm->sum = std::nan("");
  EXPECT_FALSE(decode_batch(batch_of(sm)).ok());
}

TEST(Wire, SumUnknownFlagOnASketchIsRefused) {
  Batch b;
  b.agent_id = "a";
  SourceSamples src;
  auto sk = std::make_shared<Distribution>();
  sk->sketch.add(1);
  src.samples.push_back(Sample{"lat", {}, Kind::Distribution, 0, 0, {}, sk});
  b.sources.push_back(src);
  std::string bytes = encode_batch(b);
  size_t form_at = bytes.find(static_cast<char>(0x01), bytes.find("lat"));
  ASSERT_NE(form_at, std::string::npos);
  bytes[form_at] = static_cast<char>(0x81);
  auto r = decode_batch(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("sum-unknown"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace statherd

namespace statherd {
namespace {

// b with every source's samples decoded (the lazy ones read out), encoded again: the same
// samples give the same bytes (a NaN, which a summary's min may be, included).
std::string materialized(const Batch& b) {
  Batch m = b;
  for (auto& src : m.sources) {
    std::vector<Sample> all;
    for_each_sample(src, [&](size_t, const Sample& s) { all.push_back(s); });
    src.samples = std::move(all);
    src.encoded = {};
    src.encoded_count = 0;
  }
  return encode_batch(m);
}

// Every sample of `b` in order, as for_each_sample() hands them out (copies).
std::vector<std::pair<size_t, Sample>> walk(const Batch& b) {
  std::vector<std::pair<size_t, Sample>> out;
  for (const SourceSamples& src : b.sources)
    for_each_sample(src, [&](size_t i, const Sample& s) { out.emplace_back(i, s); });
  return out;
}

// The lazy decode answers what the eager one answers: the same samples (every kind and form,
// tags; each encoded sample read into one reused Sample: a text's text does not leak into the
// counter after it, nor a distribution into a gauge), indices, counts, headers and errors.
TEST(WireLazy, SameSamplesAsTheEagerDecode) {
  Batch b = sample_batch();
  // Kinds interleaved so that a reused Sample would carry a field over.
  SourceSamples& src = b.sources[0];
  src.samples.push_back(src.samples[2]);  // text
  src.samples.push_back(Sample{"after.text", {}, Kind::Counter, 5, 9, {}, nullptr});
  src.samples.push_back(src.samples[3]);  // sketch
  src.samples.push_back(Sample{"after.dist", {{"k", "v"}}, Kind::Gauge, 6, 1.5, {}, nullptr});
  const std::string bytes = encode_batch(b);
  auto eager = decode_batch(bytes);
  auto lazy = decode_batch_lazy(bytes);
  ASSERT_TRUE(eager.ok()) << eager.error().to_string();
  ASSERT_TRUE(lazy.ok()) << lazy.error().to_string();
  EXPECT_EQ(lazy->agent_id, eager->agent_id);
  EXPECT_EQ(lazy->seq, eager->seq);
  EXPECT_EQ(lazy->sent_ms, eager->sent_ms);
  ASSERT_EQ(lazy->sources.size(), eager->sources.size());
  for (size_t i = 0; i < lazy->sources.size(); ++i) {
    EXPECT_EQ(lazy->sources[i].id, eager->sources[i].id);
    EXPECT_EQ(lazy->sources[i].fresh, eager->sources[i].fresh);
    EXPECT_TRUE(lazy->sources[i].samples.empty()) << "kept encoded";
    EXPECT_EQ(lazy->sources[i].encoded_count, eager->sources[i].samples.size());
  }
  EXPECT_EQ(lazy->sample_count(), eager->sample_count());
  EXPECT_EQ(lazy->sample_count(), 10u);
  ASSERT_EQ(lazy->errors.size(), 1u);
  EXPECT_EQ(lazy->errors[0].message, eager->errors[0].message);
  const auto a = walk(*eager), c = walk(*lazy);
  ASSERT_EQ(a.size(), c.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(c[i].first, a[i].first);
    EXPECT_TRUE(c[i].second == a[i].second) << "sample " << i << " " << a[i].second.name;
  }
  EXPECT_TRUE(c[7].second.text.empty());
  EXPECT_EQ(c[9].second.dist, nullptr);
  // Encoded again as it is, a lazily decoded batch keeps its samples.
  EXPECT_EQ(encode_batch(*lazy), bytes);
}

// The encoded samples live in the batch's own copy of the payload: the request body may be
// gone and the batch moved.
TEST(WireLazy, SamplesOutliveThePayloadTheyCameFrom) {
  std::string bytes = encode_batch(sample_batch());
  auto lazy = decode_batch_lazy(bytes);
  ASSERT_TRUE(lazy.ok());
  auto held = std::make_shared<const Batch>(std::move(*lazy));
  const auto expected = walk(*decode_batch(bytes));
  std::fill(bytes.begin(), bytes.end(), '\xff');
  bytes.clear();
  bytes.shrink_to_fit();
  const auto got = walk(*held);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(got[i].second == expected[i].second) << i;
}

// Refused exactly when the eager decode refuses, with the same message and over_limit: every
// truncation, limits, and mutated bytes.
TEST(WireLazy, RefusesWhatTheEagerDecodeRefuses) {
  const std::string bytes = encode_batch(sample_batch());
  auto same = [](std::string_view in, const WireLimits& limits) {
    bool over_e = false, over_l = true;
    auto e = decode_batch(in, limits, &over_e);
    auto l = decode_batch_lazy(in, limits, &over_l);
    ASSERT_EQ(e.ok(), l.ok()) << in.size();
    EXPECT_EQ(over_e, over_l);
    if (!e.ok()) {
      EXPECT_EQ(l.error().to_string(), e.error().to_string());
    } else {
      EXPECT_EQ(l->sample_count(), e->sample_count());
      EXPECT_EQ(materialized(*l), encode_batch(*e));
    }
  };
  for (size_t n = 0; n < bytes.size(); ++n) ASSERT_NO_FATAL_FAILURE(same(bytes.substr(0, n), {}));
  WireLimits tight;
  tight.max_samples = 3;
  same(bytes, tight);
  tight = WireLimits{};
  tight.max_string = 8;
  same(bytes, tight);
  tight = WireLimits{};
  tight.max_tags = 1;
  same(bytes, tight);
  uint32_t state = 777;
  int refused = 0;
  for (int round = 0; round < 5000; ++round) {
    std::string m = bytes;
    for (int k = 0; k < 2; ++k) {
      state = state * 1103515245u + 12345u;
      m[4 + (state >> 8) % (m.size() - 4)] = static_cast<char>(state >> 24);
    }
    ASSERT_NO_FATAL_FAILURE(same(m, {}));
    refused += decode_batch(m).ok() ? 0 : 1;
  }
  EXPECT_GT(refused, 100);
}

}  // namespace
}  // namespace statherd
