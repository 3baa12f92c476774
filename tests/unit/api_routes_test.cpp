#include "server/api_routes.h"

#include <gtest/gtest.h>

namespace statherd::server {
namespace {

TEST(QueryString, PercentDecodingAndPlus) {
  EXPECT_EQ(percent_decode("a%2Eb+c%20d"), "a.b c d");
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
  EXPECT_EQ(percent_decode("100%"), "100%");     // a bad escape stays literal
  EXPECT_EQ(percent_decode("%zz%4"), "%zz%4");
  EXPECT_EQ(percent_decode("%7B%2A%7D"), "{*}");
}

TEST(QueryString, RepeatedKeysKeepOrderAndEmptyParts) {
  auto q = parse_query("target=a.*&from=-10min&target=b%2Ec&&flag");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[0], (std::pair<std::string, std::string>{"target", "a.*"}));
  EXPECT_EQ(q[1], (std::pair<std::string, std::string>{"from", "-10min"}));
  EXPECT_EQ(q[2], (std::pair<std::string, std::string>{"target", "b.c"}));
  EXPECT_EQ(q[3], (std::pair<std::string, std::string>{"flag", ""}));
  EXPECT_TRUE(parse_query("").empty());
}

TEST(ConstantTimeEqual, ComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equal("s3cret", "s3cret"));
  EXPECT_FALSE(constant_time_equal("s3cret", "s3creT"));
  EXPECT_FALSE(constant_time_equal("s3cret", "s3cret2"));
  EXPECT_FALSE(constant_time_equal("", "x"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

class ApiRoutesTest : public ::testing::Test {
 protected:
  ApiRoutesTest() : engine_(options()), routes_("tok", engine_, store_, [] { return 2'000'000; }) {}
  static EngineOptions options() {
    EngineOptions o;
    o.fsync = false;
    return o;
  }
  ApiResponse get(std::string_view target) { return routes_.handle({"GET", target, "", ""}); }

  Engine engine_;
  MemoryStore store_{{}};
  ApiRoutes routes_;
};

TEST_F(ApiRoutesTest, RenderUsesTheStoreWithRelativeTimes) {
  IntervalOutput out;
  out.start_s = 1990;
  SeriesPoint p;
  p.app = "web";
  p.metric = "req";
  p.stat = "count";
  p.value = 4;
  out.points.push_back(p);
  store_.emit(out);
  ApiResponse r = get("/render?target=statherd.web.*.count&from=-20s&until=now&format=json");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body), nlohmann::json::parse(R"(
      [{"target": "statherd.web.req.count", "datapoints": [[4.0, 1990], [null, 2000]]}])"));
  ApiResponse find = get("/metrics/find?query=statherd.%2A");
  EXPECT_EQ(nlohmann::json::parse(find.body)[0]["id"], "statherd.web");
}

TEST_F(ApiRoutesTest, ErrorsAreJsonWithHints) {
  EXPECT_EQ(get("/render").status, 400);
  EXPECT_EQ(get("/render?target=a&format=png").status, 400);
  EXPECT_EQ(get("/metrics/find").status, 400);
  ApiResponse unauthorized = routes_.handle({"POST", "/api/v1/ingest", "Bearer nope", "x"});
  EXPECT_EQ(unauthorized.status, 401);
  EXPECT_FALSE(nlohmann::json::parse(unauthorized.body)["hint"].get<std::string>().empty());
  EXPECT_EQ(routes_.handle({"POST", "/api/v1/ingest", "tok", "x"}).status, 401);  // no "Bearer "
  EXPECT_EQ(routes_.handle({"POST", "/api/v1/ingest", "Bearer tok", "x"}).status, 400);
  EXPECT_EQ(routes_.handle({"DELETE", "/healthz", "", ""}).allow, "GET");
}

}  // namespace
}  // namespace statherd::server
