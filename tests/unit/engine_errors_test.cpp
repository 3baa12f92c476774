// The errors agents report (issue 9, item 9): kept bounded per agent, per message and in the
// number of agents, so /api/v1/sources and the web page stay small whatever agents send.
#include <gtest/gtest.h>

#include "engine_test_util.h"
#include "server/engine.h"

namespace statherd::server {
namespace {

constexpr int64_t T0 = 1'700'000'000'000;

EngineOptions opts() {
  EngineOptions o;
  o.fsync = false;
  return o;
}

std::string batch_with_errors(const std::string& agent, uint64_t seq, size_t errors,
                              size_t message_bytes) {
  Batch b;
  b.agent_id = agent;
  b.seq = seq;
  b.sources = {testing::source(3, {testing::gauge("q", 1, T0)})};
  for (size_t i = 0; i < errors; ++i) {
    b.errors.push_back({"/tmp/f" + std::to_string(i), std::string(message_bytes, 'm')});
  }
  return encode_batch(b);
}

TEST(EngineErrors, KeptPerAgentAreBoundedInCountAndBytes) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  ASSERT_EQ(e.ingest(batch_with_errors("a1", 1, 1000, 64 * 1024), T0).http_status, 200);
  nlohmann::json j = e.sources_json(T0);
  const auto& agent = j["agents"][0];
  ASSERT_EQ(agent["errors"].size(), e.options().max_errors_per_agent);
  EXPECT_EQ(agent["errors_dropped"], 1000 - e.options().max_errors_per_agent);
  std::string message = agent["errors"][0]["message"];
  EXPECT_LE(message.size(), e.options().max_error_bytes + 40);
  EXPECT_NE(message.find("bytes cut"), std::string::npos) << message.substr(0, 80);
  EXPECT_LT(j.dump().size(), 64u * 1024);
}

TEST(EngineErrors, OnlySoManyAgentsKeepErrorsAndAnAgentWithoutErrorsFreesItsPlace) {
  Engine e(opts());
  ASSERT_TRUE(e.open(T0).ok());
  const uint64_t cap = e.options().max_agents_with_errors;
  for (uint64_t i = 0; i < cap + 50; ++i) {
    ASSERT_EQ(e.ingest(batch_with_errors("a" + std::to_string(i), 1, 100, 1024), T0)
                  .http_status, 200);
  }
  nlohmann::json j = e.sources_json(T0);
  ASSERT_EQ(j["agents"].size(), cap + 50);
  uint64_t with_errors = 0;
  for (const auto& a : j["agents"]) with_errors += a["errors"].empty() ? 0 : 1;
  EXPECT_EQ(with_errors, cap);
  EXPECT_LT(j.dump().size(), 16u << 20);  // 10,000 x 64 KB per agent took 300 MB before
  // a0 recovers (a batch without errors); a newcomer's errors are kept in its place.
  ASSERT_EQ(e.ingest(batch_with_errors("a0", 2, 0, 0), T0).http_status, 200);
  IngestOutcome late = e.ingest(batch_with_errors("late", 1, 1, 10), T0);
  ASSERT_EQ(late.http_status, 200) << late.message;
  bool seen = false;
  const nlohmann::json after = e.sources_json(T0);
  for (const auto& a : after["agents"]) {
    if (a["agent_id"] != "late") continue;
    seen = true;
    EXPECT_EQ(a["errors"].size(), 1u);
  }
  EXPECT_TRUE(seen);
}

}  // namespace
}  // namespace statherd::server
