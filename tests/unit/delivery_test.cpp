// What delivery does to a spooled batch for each answer (issue #9 item 2): keep and retry on
// every answer but two; quarantine on the server's verdict; split on 413 inside the batch's
// seq window, persisted so the whole batch is never sent again.
#include "agent/delivery.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "agent/delivery_split.h"
#include "common/wire.h"

namespace statherd::agent {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kVerdict = R"({"status":"error","error":"bad","verdict":"malformed_batch"})";

struct Sent {
  uint64_t seq;
  std::string body;
};

// Answers with `answer(seq, body)` (an HTTP status and body), classified as the HTTP sender does.
class ScriptedSender : public BatchSender {
 public:
  std::function<std::pair<int, std::string>(uint64_t, std::string_view)> answer;
  std::vector<Sent> sent;
  ShipResult send(uint64_t seq, std::string_view body) override {
    sent.push_back({seq, std::string(body)});
    auto [status, text] = answer(seq, body);
    return {classify_http_status(status, text), status, text};
  }
};

// A batch of `n` counter samples over two sources (the first one fresh), values base + i.
std::string make_batch(uint64_t seq, int n, double base = 0) {
  Batch b;
  b.agent_id = "agent-1";
  b.seq = seq;
  b.sent_ms = 1'000;
  for (int s = 0; s < 2; ++s) {
    SourceSamples src;
    src.id = {"h", "app", 10 + s, 5'000, "/tmp/app-" + std::to_string(s) + ".mmstats"};
    src.fresh = s == 0;
    for (int i = s == 0 ? 0 : n / 2; i < (s == 0 ? n / 2 : n); ++i) {
      Sample c;
      c.name = "c" + std::to_string(i);
      c.kind = Kind::Counter;
      c.value = base + i;
      c.timestamp_ms = 1'000;
      src.samples.push_back(c);
    }
    b.sources.push_back(src);
  }
  b.errors.push_back({"/tmp/bad.mmstats", "truncated"});
  return encode_batch(b);
}

// Sample name -> (value, fresh, batch seq field) of every sample in the sent bodies.
struct SeenSample {
  double value;
  bool fresh;
  uint64_t seq;
};

class DeliveryRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/statherd-delivery-rules-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    reopen();
  }
  void TearDown() override { fs::remove_all(root_); }
  void reopen(QuarantineLimits limits = {}) {
    spool_.reset();
    spool_ = Spool::open(root_ + "/spool", 1 << 24, 1'000, limits).value();
  }
  // Spools `count` batches of n samples with real (strided) seqs.
  std::vector<uint64_t> spool_batches(int count, int n) {
    std::vector<uint64_t> seqs;
    for (int i = 0; i < count; ++i) {
      uint64_t seq = *spool_->begin_batch(1'000);
      EXPECT_TRUE(spool_->put(seq, make_batch(seq, n, 100.0 * i)).ok());
      seqs.push_back(seq);
    }
    return seqs;
  }
  SpoolDelivery delivery(BatchSender& sender) {
    return SpoolDelivery(*spool_, sender, Backoff(1s, 30s, 7), [this] { return now_; });
  }
  std::string root_;
  std::unique_ptr<Spool> spool_;
  SteadyClock::time_point now_ = SteadyClock::now();
};

TEST_F(DeliveryRulesTest, KeepsAndRetriesEveryAnswerButAckVerdictAndTooLarge) {
  auto seqs = spool_batches(2, 4);
  for (int status : {0, 400, 404, 405, 408, 409, 410, 429, 500, 502, 503, 504, 301}) {
    ScriptedSender sender;
    sender.answer = [&](uint64_t, std::string_view) { return std::pair{status, "no"}; };
    auto d = delivery(sender);
    EXPECT_FALSE(d.drain(now_ + 60s)) << status;
    EXPECT_EQ(spool_->pending(), seqs) << status;
    EXPECT_TRUE(d.backing_off()) << status;
    EXPECT_EQ(sender.sent.size(), 1u) << status;  // stops at the first failure, keeps order
  }
  EXPECT_EQ(spool_->quarantine().count(), 0u);
}

TEST_F(DeliveryRulesTest, QuarantinesOnlyABatchTheServerDeclaredMalformed) {
  auto seqs = spool_batches(3, 4);
  const std::string first = *spool_->read(seqs[0]);
  ScriptedSender sender;
  sender.answer = [&](uint64_t seq, std::string_view) {
    return seq == seqs[0] ? std::pair<int, std::string>{400, kVerdict}
                          : std::pair<int, std::string>{200, "{}"};
  };
  auto d = delivery(sender);
  EXPECT_TRUE(d.drain(now_ + 60s));
  EXPECT_EQ(d.stats().quarantined, 1u);
  EXPECT_EQ(d.stats().acked, 2u);
  const auto& q = spool_->quarantine();
  EXPECT_EQ(q.count(), 1u);
  EXPECT_EQ(q.bytes(), first.size());
  std::ifstream in(q.path_of(seqs[0]), std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), first);
  struct stat st {};
  ASSERT_EQ(::stat(q.path_of(seqs[0]).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(fs::exists(q.dir() + "/" + fs::path(q.path_of(seqs[0])).stem().string() + ".why"));
  reopen();  // counted again after a restart
  EXPECT_EQ(spool_->quarantine().count(), 1u);
}

TEST_F(DeliveryRulesTest, QuarantineDropsItsOldestOnlyBeyondItsBound) {
  reopen({.max_batches = 2, .max_bytes = 1 << 20});
  auto& q = spool_->quarantine();
  ASSERT_TRUE(q.add(1024, "one", "r").ok());
  ASSERT_TRUE(q.add(2048, "two", "r").ok());
  EXPECT_EQ(q.dropped(), 0u);
  ASSERT_TRUE(q.add(3072, "three", "r").ok());
  EXPECT_EQ(q.count(), 2u);
  EXPECT_EQ(q.dropped(), 1u);
  EXPECT_EQ(q.bytes(), 8u);
  EXPECT_FALSE(fs::exists(q.path_of(1024)));
  EXPECT_TRUE(fs::exists(q.path_of(3072)));
  reopen({.max_batches = 10, .max_bytes = 6});
  ASSERT_TRUE(spool_->quarantine().add(4096, "four", "r").ok());  // 12 bytes > 6: oldest go
  EXPECT_EQ(spool_->quarantine().count(), 1u);
  EXPECT_EQ(spool_->quarantine().dropped(), 2u);
}

// Decodes every sent body: name -> what the server would apply, in the order it would.
std::vector<std::pair<std::string, SeenSample>> applied(const std::vector<Sent>& sent,
                                                        uint64_t* last_seq) {
  std::vector<std::pair<std::string, SeenSample>> out;
  for (const auto& s : sent) {
    auto b = decode_batch(s.body);
    EXPECT_TRUE(b.ok());
    EXPECT_EQ(b->seq, s.seq);
    if (b->seq <= *last_seq) continue;  // the server's dedup
    *last_seq = b->seq;
    for (const auto& src : b->sources)
      for (const auto& smp : src.samples) out.push_back({smp.name, {smp.value, src.fresh, b->seq}});
  }
  return out;
}

TEST_F(DeliveryRulesTest, SplitsOn413InsideTheSeqWindowAndAppliesEachSampleOnceInOrder) {
  auto seqs = spool_batches(2, 40);
  // The "server" takes bodies up to a third of a whole batch: the first batch splits twice.
  const size_t limit = spool_->read(seqs[0])->size() / 3;
  ScriptedSender sender;
  sender.answer = [&](uint64_t, std::string_view body) {
    return body.size() > limit ? std::pair<int, std::string>{413, "too big"}
                               : std::pair<int, std::string>{200, "{}"};
  };
  auto d = delivery(sender);
  EXPECT_TRUE(d.drain(now_ + 60s));
  EXPECT_GE(d.stats().split_batches, 2u);
  EXPECT_EQ(d.stats().acked, 2u);
  uint64_t last_seq = 0;
  auto seen = applied(sender.sent, &last_seq);
  ASSERT_EQ(seen.size(), 80u);  // every sample of both batches exactly once
  for (size_t i = 0; i < 40; ++i) {
    EXPECT_EQ(seen[i].first, "c" + std::to_string(i));
    EXPECT_EQ(seen[i].second.value, static_cast<double>(i));
    EXPECT_GT(seen[i].second.seq, seqs[0] - kSeqStride);  // inside the first batch's window
    EXPECT_LE(seen[i].second.seq, seqs[0]);
    EXPECT_EQ(seen[i].second.fresh, i < 20);  // the fresh source stays fresh in its parts
  }
  for (size_t i = 40; i < 80; ++i) EXPECT_GT(seen[i].second.seq, seqs[0]);
  EXPECT_EQ(last_seq, seqs[1]);
}

// A body far over the server's limit never gets the 413 back: the server refuses it from its
// Content-Length and closes while the agent is still writing (broken pipe). So the agent never
// sends a part over max_send_bytes: it splits such a batch before sending it.
TEST_F(DeliveryRulesTest, SplitsABatchOverMaxSendBytesBeforeSendingIt) {
  auto seqs = spool_batches(1, 40);
  const size_t cap = spool_->read(seqs[0])->size() / 3;
  ScriptedSender sender;
  sender.answer = [&](uint64_t, std::string_view body) {
    // Over the cap: the connection breaks before any answer (status 0, a network failure).
    return body.size() > cap ? std::pair<int, std::string>{0, "send: Broken pipe"}
                             : std::pair<int, std::string>{200, "{}"};
  };
  auto d = delivery(sender);
  d.set_max_send_bytes(cap);
  EXPECT_TRUE(d.drain(now_ + 60s));
  for (const Sent& s : sender.sent) EXPECT_LE(s.body.size(), cap);
  EXPECT_GE(d.stats().split_batches, 2u);
  uint64_t last_seq = 0;
  EXPECT_EQ(applied(sender.sent, &last_seq).size(), 40u);
}

TEST_F(DeliveryRulesTest, NeverResendsTheWholeBatchOnceSplitEvenAfterARestart) {
  auto seqs = spool_batches(1, 10);
  const std::string whole = *spool_->read(seqs[0]);
  int calls = 0;
  ScriptedSender sender;
  sender.answer = [&](uint64_t, std::string_view) {
    ++calls;  // 413, then the first half is acked, then the second half meets a 503
    return calls == 1   ? std::pair<int, std::string>{413, ""}
           : calls == 2 ? std::pair<int, std::string>{200, "{}"}
                        : std::pair<int, std::string>{503, ""};
  };
  {
    auto d = delivery(sender);
    EXPECT_FALSE(d.drain(now_ + 60s));
  }
  EXPECT_TRUE(fs::exists(spool_->path_of(seqs[0])));
  EXPECT_EQ(fs::path(spool_->path_of(seqs[0])).extension(), ".parts");
  reopen();  // a restart (or the limit raised): only the parts go out, the first one again
  ASSERT_EQ(spool_->read_parts(seqs[0])->size(), 2u);
  ScriptedSender ok;
  ok.answer = [](uint64_t, std::string_view) { return std::pair<int, std::string>{200, "{}"}; };
  auto d = delivery(ok);
  EXPECT_TRUE(d.drain(now_ + 60s));
  ASSERT_EQ(ok.sent.size(), 2u);
  for (const auto& s : ok.sent) EXPECT_NE(s.body, whole);
  EXPECT_EQ(ok.sent[0].body, sender.sent[1].body);  // a duplicate for the server: harmless
  EXPECT_EQ(ok.sent[1].seq, seqs[0]);
  uint64_t last_seq = 0;
  std::vector<Sent> all = {sender.sent[1], ok.sent[0], ok.sent[1]};
  EXPECT_EQ(applied(all, &last_seq).size(), 10u);
}

TEST_F(DeliveryRulesTest, QuarantinesASingleSampleStillTooLargeAndMovesOn) {
  auto seqs = spool_batches(2, 1);  // one sample in each
  ScriptedSender sender;
  sender.answer = [&](uint64_t seq, std::string_view) {
    return seq <= seqs[0] ? std::pair<int, std::string>{413, ""}
                          : std::pair<int, std::string>{200, "{}"};
  };
  auto d = delivery(sender);
  EXPECT_TRUE(d.drain(now_ + 60s));
  EXPECT_EQ(d.stats().quarantined, 1u);
  EXPECT_EQ(d.stats().split_batches, 0u);
  EXPECT_EQ(spool_->quarantine().count(), 1u);
  EXPECT_EQ(d.stats().acked, 1u);
}

TEST(SplitPart, RefusesAWindowOfWidthOne) {
  auto halves = split_part({41, 42, make_batch(42, 10)});
  ASSERT_FALSE(halves.ok());
  EXPECT_NE(halves.error().message.find("no free seqs"), std::string::npos);
}

TEST_F(DeliveryRulesTest, RetriesUnauthorizedSlowly) {
  spool_batches(1, 2);
  ScriptedSender sender;
  sender.answer = [](uint64_t, std::string_view) { return std::pair<int, std::string>{401, ""}; };
  auto d = delivery(sender);
  EXPECT_FALSE(d.drain(now_ + 60s));
  EXPECT_GE(d.next_attempt() - now_, 30s);
  EXPECT_EQ(d.stats().unauthorized, 1u);
  EXPECT_EQ(spool_->count(), 1u);
}

TEST_F(DeliveryRulesTest, QuarantinesAnUnreadableSpoolFileInsteadOfDeletingIt) {
  auto seqs = spool_batches(1, 2);
  ASSERT_TRUE(spool_->replace_parts(seqs[0], *spool_->read_parts(seqs[0])).ok());
  std::ofstream(spool_->path_of(seqs[0]), std::ios::trunc) << "garbage";
  ScriptedSender sender;
  sender.answer = [](uint64_t, std::string_view) { return std::pair<int, std::string>{200, ""}; };
  auto d = delivery(sender);
  EXPECT_TRUE(d.drain(now_ + 60s));
  EXPECT_TRUE(sender.sent.empty());
  EXPECT_EQ(d.stats().unreadable, 1u);
  EXPECT_EQ(spool_->quarantine().count(), 1u);
  EXPECT_TRUE(fs::exists(spool_->quarantine().path_of(seqs[0])));
}

}  // namespace
}  // namespace statherd::agent
