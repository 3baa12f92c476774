#include "server/api_routes.h"
#include "rollup_test_util.h"

#include <gtest/gtest.h>

#include <optional>

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
  ApiRoutesTest() : engine_(options()) { build({}); }
  static EngineOptions options() {
    EngineOptions o;
    o.fsync = false;
    return o;
  }
  // The routes as main makes them: everything they serve given at construction.
  void build(ApiRoutesOptions routes_options) {
    routes_.emplace(token_, engine_, store_, [] { return 2'000'000; }, std::move(routes_options));
  }
  ApiResponse get(std::string_view target) { return routes_->handle({"GET", target, "", ""}); }

  IngestToken token_{"tok"};
  Engine engine_;
  MemoryStore store_{{}};
  std::optional<ApiRoutes> routes_;
};

TEST_F(ApiRoutesTest, RenderUsesTheStoreWithRelativeTimes) {
  IntervalOutput out;
  out.start_s = 1990;
  SeriesPoint p;
  p.app = "web";
  p.metric = "req";
  p.stat = "count";
  p.value = 4;
  testing::append_point(out, p);
  store_.emit(out);
  ApiResponse r = get("/render?target=statherd.web.*.count&from=-20s&until=now&format=json");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body), nlohmann::json::parse(R"(
      [{"target": "statherd.web.req.count", "tags": {"name": "statherd.web.req.count"},
        "datapoints": [[4.0, 1990], [null, 2000]]}])"));
  ApiResponse find = get("/metrics/find?query=statherd.%2A");
  EXPECT_EQ(nlohmann::json::parse(find.body)[0]["id"], "statherd.web");
}

TEST_F(ApiRoutesTest, ErrorsAreJsonWithHints) {
  ApiResponse no_target = get("/render");  // graphite-web answers an empty list
  EXPECT_EQ(no_target.status, 200);
  EXPECT_EQ(no_target.body, "[]");
  EXPECT_EQ(get("/render?target=a&format=png").status, 400);
  ApiResponse unknown = get("/render?target=noSuchFunction(a.b)");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(nlohmann::json::parse(unknown.body)["error"].get<std::string>().find("noSuchFunction"),
            std::string::npos);
  EXPECT_EQ(get("/render?target=sumSeries(a.b").status, 400);
  EXPECT_EQ(get("/render?target=a&from=-1h&until=-1h").status, 400);  // empty range
  EXPECT_EQ(get("/metrics/find").status, 400);
  ApiResponse unauthorized = routes_->handle({"POST", "/api/v1/ingest", "Bearer nope", "x"});
  EXPECT_EQ(unauthorized.status, 401);
  EXPECT_FALSE(nlohmann::json::parse(unauthorized.body)["hint"].get<std::string>().empty());
  EXPECT_EQ(routes_->handle({"POST", "/api/v1/ingest", "tok", "x"}).status, 401);  // no "Bearer "
  EXPECT_EQ(routes_->handle({"POST", "/api/v1/ingest", "Bearer tok", "x"}).status, 400);
  EXPECT_EQ(routes_->handle({"DELETE", "/healthz", "", ""}).allow, "GET");
}

// Issue #10 item 4: a SIGHUP reload replaces the token in the IngestToken main owns (the
// routes are not told); from then on ingest checks the new token, and the old one is refused.
TEST_F(ApiRoutesTest, IngestChecksTheTokenTheIngestTokenHoldsNow) {
  auto ingest = [&](std::string_view authorization) {
    return routes_->handle({"POST", "/api/v1/ingest", authorization, "x"}).status;
  };
  auto head = [&](std::string_view authorization) {
    return routes_->check_head("POST", "/api/v1/ingest", authorization).status;
  };
  EXPECT_EQ(ingest("Bearer tok"), 400);  // past the token, refused by the decoder
  EXPECT_EQ(ingest("Bearer rotated"), 401);
  token_.set("rotated");
  EXPECT_EQ(ingest("Bearer rotated"), 400);
  EXPECT_EQ(head("Bearer rotated"), 0);  // go on: the body is read
  EXPECT_EQ(ingest("Bearer tok"), 401);
  EXPECT_EQ(head("Bearer tok"), 401);
  EXPECT_TRUE(routes_->authorized("Bearer rotated"));
  EXPECT_FALSE(routes_->authorized("Bearer tok"));
}

// Issue #9 item 2: the agent takes a batch out of its spool only on this verdict, so only the
// decoder's refusal carries it; a 401, 404 or 405 of the same route does not.
TEST_F(ApiRoutesTest, AnUndecodableBatchGetsTheMalformedVerdictAndNothingElseDoes) {
  ApiResponse bad = routes_->handle({"POST", "/api/v1/ingest", "Bearer tok", "not a batch"});
  ASSERT_EQ(bad.status, 400);
  auto body = nlohmann::json::parse(bad.body);
  EXPECT_EQ(body["verdict"], "malformed_batch");
  EXPECT_FALSE(body["error"].get<std::string>().empty());
  for (const ApiResponse& r : {routes_->handle({"POST", "/api/v1/ingest", "Bearer nope", "x"}),
                               routes_->handle({"POST", "/api/v1/ingestx", "Bearer tok", "x"}),
                               routes_->handle({"GET", "/api/v1/ingest", "Bearer tok", ""}),
                               get("/render?target=sumSeries(")}) {
    EXPECT_NE(r.status, 200);
    EXPECT_FALSE(nlohmann::json::parse(r.body).contains("verdict")) << r.body;
  }
}

TEST_F(ApiRoutesTest, RenderSeveralTargetsAbsoluteTimesAndMaxDataPoints) {
  for (int64_t t = 1000; t <= 1030; t += 10) {
    IntervalOutput out;
    out.start_s = t;
    for (const char* metric : {"a", "b"}) {
      SeriesPoint p;
      p.app = "web";
      p.metric = metric;
      p.stat = "count";
      p.value = static_cast<double>(t - 990);
      testing::append_point(out, p);
    }
    store_.emit(out);
  }
  ApiResponse r = get("/render?target=statherd.web.a.count&target=statherd.web.b.count"
                      "&from=990&until=1030&maxDataPoints=2");
  ASSERT_EQ(r.status, 200) << r.body;
  // graphite-web's alignment: runs of 2 steps start at multiples of 20 s; the run before the
  // first whole one is dropped (points 10,20,30,40 at 1000..1030 -> 25 at 1020, 40 at 1040).
  auto body = nlohmann::json::parse(r.body);
  ASSERT_EQ(body.size(), 2u);
  EXPECT_EQ(body[0]["target"], "statherd.web.a.count");
  EXPECT_EQ(body[1]["target"], "statherd.web.b.count");
  for (const auto& s : body)
    EXPECT_EQ(s["datapoints"], nlohmann::json::parse("[[25.0, 1020], [40.0, 1040]]"));
  // 00:16_19700101 = 960 s, 00:17_19700101 = 1020 s.
  ApiResponse abs = get("/render?target=statherd.web.a.count&from=00:16_19700101"
                        "&until=00:17_19700101");
  ASSERT_EQ(abs.status, 200) << abs.body;
  EXPECT_EQ(nlohmann::json::parse(abs.body)[0]["datapoints"].size(), 6u);  // 970..1020
  EXPECT_EQ(get("/render?target=a&maxDataPoints=lots").status, 400);
  ApiResponse csv = get("/render?target=statherd.web.a.count&format=csv&from=990&until=1020");
  EXPECT_EQ(csv.status, 200);
  EXPECT_EQ(csv.body,
            "statherd.web.a.count,1970-01-01 00:16:40,10.0\r\n"
            "statherd.web.a.count,1970-01-01 00:16:50,20.0\r\n"
            "statherd.web.a.count,1970-01-01 00:17:00,30.0\r\n");
  ApiResponse raw = get("/render?target=sumSeries(statherd.web.*.count)&format=raw&from=990"
                        "&until=1020");
  EXPECT_EQ(raw.body, "sumSeries(statherd.web.*.count),1000,1030,10|20.0,40.0,60.0\n");
}

TEST_F(ApiRoutesTest, FindTreejsonByDefaultAndCompleter) {
  IntervalOutput out;
  out.start_s = 1990;
  SeriesPoint p;
  p.app = "web";
  p.metric = "req";
  p.stat = "count";
  p.value = 1;
  testing::append_point(out, p);
  store_.emit(out);
  nlohmann::json tree =
      nlohmann::json::parse(get("/metrics/find?query=statherd.web.*&format=treejson").body);
  EXPECT_EQ(tree, nlohmann::json::parse(R"([{"text": "req", "id": "statherd.web.req", "leaf": 0,
      "expandable": 1, "allowChildren": 1}])"));
  nlohmann::json leaf =
      nlohmann::json::parse(get("/metrics/find?query=statherd.web.req.c%2A").body);
  EXPECT_EQ(leaf[0]["leaf"], 1);
  EXPECT_EQ(leaf[0]["id"], "statherd.web.req.count");
  nlohmann::json completer =
      nlohmann::json::parse(get("/metrics/find?query=statherd.%7Bweb,db%7D&format=completer").body);
  EXPECT_EQ(completer, nlohmann::json::parse(R"({"metrics": [
      {"path": "statherd.web.", "name": "web", "is_leaf": "0"}]})"));  // graphite-web's "0"/"1"
  // ids under the query's own prefix, as graphite-web writes them
  nlohmann::json braces =
      nlohmann::json::parse(get("/metrics/find?query=statherd.%7Bweb,db%7D.%2A").body);
  EXPECT_EQ(braces[0]["id"], "statherd.{web,db}.req");
  EXPECT_EQ(get("/metrics/find/?query=statherd.*").status, 200);  // a trailing slash too
  EXPECT_EQ(nlohmann::json::parse(get("/metrics/expand?query=statherd.web.*.*").body),
            nlohmann::json::parse(R"({"results": ["statherd.web.req.count"]})"));
  EXPECT_EQ(nlohmann::json::parse(get("/metrics/index.json").body),
            nlohmann::json::parse(R"(["statherd.web.req.count"])"));
  EXPECT_EQ(get("/version").body, "1.1.8");
  EXPECT_EQ(get("/metrics/find?query=x&format=pickle").status, 400);
}

TEST_F(ApiRoutesTest, RenderAndFindAcceptFormPosts) {
  IntervalOutput out;
  out.start_s = 1990;
  SeriesPoint p;
  p.app = "web";
  p.metric = "req";
  p.stat = "count";
  p.value = 2;
  testing::append_point(out, p);
  store_.emit(out);
  ApiResponse r = routes_->handle(
      {"POST", "/render", "", "target=statherd.web.req.count&from=-20s&until=now&format=json"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)[0]["datapoints"][0],
            nlohmann::json::parse("[2.0, 1990]"));
  ApiResponse f = routes_->handle({"POST", "/metrics/find", "", "query=statherd.*"});
  ASSERT_EQ(f.status, 200) << f.body;
  EXPECT_EQ(nlohmann::json::parse(f.body)[0]["id"], "statherd.web");
  EXPECT_EQ(routes_->handle({"POST", "/healthz", "", ""}).status, 405);
}

TEST_F(ApiRoutesTest, ReadLimitsGive400ForPatternsAnd413ForAnswers) {
  IntervalOutput out;
  out.start_s = 1990;
  for (int i = 0; i < 30; ++i) {
    SeriesPoint p;
    p.app = "web";
    p.metric = "m" + std::to_string(i);
    p.stat = "count";
    p.value = i;
    testing::append_point(out, p);
  }
  store_.emit(out);
  ReadLimits limits;
  limits.max_targets = 3;
  limits.max_paths = 20;
  limits.max_answer_bytes = 300;
  ApiRoutesOptions bounded;
  bounded.reads = limits;
  build(bounded);

  auto expect_error = [&](const ApiResponse& r, int status, std::string_view hint_key) {
    EXPECT_EQ(r.status, status) << r.body;
    auto body = nlohmann::json::parse(r.body);
    EXPECT_EQ(body["status"], "error");
    EXPECT_NE(body["hint"].get<std::string>().find(hint_key), std::string::npos) << r.body;
  };
  expect_error(get("/render?target=a&target=b&target=c&target=d"), 400, "reads.max_targets");
  std::string bomb = "/render?target=*.*.";
  for (int i = 0; i < 12; ++i) bomb += "%7Ba,b%7D";
  expect_error(get(bomb), 400, "reads.max_alternatives");
  expect_error(get("/metrics/find?query=" + std::string(2000, 'a')), 400,
               "reads.max_pattern_bytes");
  expect_error(get("/render?target=statherd.web.*.count&from=-20s"), 413, "reads.max_paths");
  expect_error(get("/metrics/find?query=statherd.web.*"), 413, "reads.max_paths");
  expect_error(get("/render?target=statherd.web.m1*.count&from=-20s"), 413,
               "reads.max_answer_bytes");  // 11 series, under max_paths, over 300 bytes
  EXPECT_EQ(get("/render?target=statherd.web.m1.count&from=-20s").status, 200);
}

TEST_F(ApiRoutesTest, ReadRoutesArePreparedForTheReadThreadOthersAreNot) {
  EXPECT_TRUE(ApiRoutes::is_read_path("/render"));
  EXPECT_TRUE(ApiRoutes::is_read_path("/metrics/find"));
  EXPECT_TRUE(ApiRoutes::is_read_path("/"));
  EXPECT_TRUE(ApiRoutes::is_read_path("/metrics"));
  EXPECT_TRUE(ApiRoutes::is_read_path("/api/v1/sources"));
  EXPECT_FALSE(ApiRoutes::is_read_path("/healthz"));
  EXPECT_FALSE(ApiRoutes::is_read_path("/api/v1/ingest"));
  EXPECT_FALSE(routes_->prepare_read({"GET", "/healthz", "", ""}));
  std::string target = "/render?target=statherd.*&from=-20s";
  auto work = routes_->prepare_read({"GET", target, "", ""});
  ASSERT_TRUE(work);
  target.assign(target.size(), 'x');  // the prepared work holds its own copy
  EXPECT_EQ(work().status, 200);
  auto page = routes_->prepare_read({"GET", "/", "", ""});
  ASSERT_TRUE(page);
  EXPECT_EQ(page().status, 200);
  auto sources = routes_->prepare_read({"GET", "/api/v1/sources", "", ""});
  ASSERT_TRUE(sources);
  EXPECT_EQ(sources().status, 200);
}

TEST_F(ApiRoutesTest, MetricsTakesTheEngineSideFirstAndServesTheSharedTextOnTheReadThread) {
  EXPECT_FALSE(routes_->prepare_read({"GET", "/metrics", "", ""}));  // off: 404 on the io thread
  EXPECT_EQ(get("/metrics").status, 404);
  auto shared = std::make_shared<const std::string>("statherd_x 1\n");
  int prepared = 0, served = 0;
  ApiRoutesOptions with_scrape;
  with_scrape.prometheus_scrape = [&] {
    ++prepared;
    return std::function<ScrapeText()>([&, n = prepared] {
      ++served;
      return ScrapeText{shared, "statherd_server_self " + std::to_string(n) + "\n"};
    });
  };
  build(std::move(with_scrape));
  auto work = routes_->prepare_read({"GET", "/metrics", "", ""});
  ASSERT_TRUE(work);
  EXPECT_EQ(prepared, 1);
  EXPECT_EQ(served, 0);  // the text is made by the read thread, not here
  ApiResponse r = work();
  EXPECT_EQ(served, 1);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.shared_body, shared);  // the same copy, not a new one
  EXPECT_EQ(r.body, "statherd_server_self 1\n");
}

// graphite.tags: true: the store names tagged series as the Graphite sink does and answers
// graphite-web's tag API and seriesByTag() over them; three intervals of changing values.
class ApiRoutesTagsTest : public ::testing::Test {
 protected:
  ApiRoutesTagsTest() : engine_(ApiRoutesTest_options()) {
    MemoryStoreOptions o;
    o.tags = true;
    store_.emplace(o);
    routes_.emplace(token_, engine_, *store_, [] { return 2'000'000; });
    for (int i = 0; i < 3; ++i) {
      std::vector<SeriesPoint> points;
      auto add = [&](std::string metric, std::string stat, Tags tags, double v) {
        SeriesPoint p;
        p.app = "web";
        p.metric = std::move(metric);
        p.stat = std::move(stat);
        p.tags = std::move(tags);
        p.value = v;
        points.push_back(p);
      };
      add("jobs", "rate", {{"dc", "east"}, {"queue", "mail"}}, 1 + i);
      add("jobs", "rate", {{"dc", "west"}, {"queue", "mail"}}, 10 * (1 + i));
      add("jobs", "rate", {{"dc", "west"}, {"queue", "sms"}}, 100 * (1 + i));
      add("temp", "mean", {}, 5 + i);
      store_->emit(testing::output_of(1960 + 10 * i, 10, points));
    }
  }
  static EngineOptions ApiRoutesTest_options() {
    EngineOptions o;
    o.fsync = false;
    return o;
  }
  nlohmann::json get_json(std::string_view target, int status = 200) {
    ApiResponse r = routes_->handle({"GET", target, "", ""});
    EXPECT_EQ(r.status, status) << target << ": " << r.body;
    return nlohmann::json::parse(r.body);
  }
  static std::vector<double> values(const nlohmann::json& series) {
    std::vector<double> out;
    for (const auto& p : series["datapoints"])
      if (!p[0].is_null()) out.push_back(p[0].get<double>());
    return out;
  }

  IngestToken token_{"tok"};
  Engine engine_;
  std::optional<MemoryStore> store_;
  std::optional<ApiRoutes> routes_;
};

TEST_F(ApiRoutesTagsTest, TagListsAndValuesWithCounts) {
  EXPECT_EQ(get_json("/tags"),
            nlohmann::json::parse(R"([{"tag": "dc"}, {"tag": "name"}, {"tag": "queue"}])"));
  EXPECT_EQ(get_json("/tags/?filter=q"), nlohmann::json::parse(R"([{"tag": "queue"}])"));
  EXPECT_EQ(get_json("/tags?limit=1"), nlohmann::json::parse(R"([{"tag": "dc"}])"));
  EXPECT_EQ(get_json("/tags/dc"), nlohmann::json::parse(R"({"tag": "dc", "values": [
      {"value": "east", "count": 1}, {"value": "west", "count": 2}]})"));
  EXPECT_EQ(get_json("/tags/dc?filter=w")["values"].size(), 1u);
  EXPECT_EQ(get_json("/tags/dc?filter=nomatch")["values"].size(), 0u);  // the tag exists
  EXPECT_TRUE(get_json("/tags/nosuch").is_null());
  EXPECT_EQ(get_json("/tags/name")["values"].size(), 2u);  // jobs.rate (3 series), temp.mean
  get_json("/tags?limit=x", 400);
  get_json("/tags?filter=%5B", 400);
}

// The tag index is made on the first tag read and again after the paths changed.
TEST_F(ApiRoutesTagsTest, TheTagIndexFollowsNewPaths) {
  EXPECT_EQ(get_json("/tags/dc")["values"].size(), 2u);
  SeriesPoint p;
  p.app = "web";
  p.metric = "jobs";
  p.stat = "rate";
  p.tags = {{"dc", "north"}, {"queue", "mail"}};
  p.value = 7;
  store_->emit(testing::output_of(1990, 10, {p}));
  EXPECT_EQ(get_json("/tags/dc"), nlohmann::json::parse(R"({"tag": "dc", "values": [
      {"value": "east", "count": 1}, {"value": "north", "count": 1},
      {"value": "west", "count": 2}]})"));
  EXPECT_EQ(get_json("/tags/findSeries?expr=dc%3Dnorth"),
            nlohmann::json::parse(R"(["statherd.web.jobs.rate;dc=north;queue=mail"])"));
  EXPECT_EQ(get_json("/tags/findSeries?expr=queue%3Dmail").size(), 3u);
}

TEST_F(ApiRoutesTagsTest, FindSeriesAndAutoComplete) {
  EXPECT_EQ(get_json("/tags/findSeries?expr=dc%3Dwest"), nlohmann::json::parse(R"([
      "statherd.web.jobs.rate;dc=west;queue=mail", "statherd.web.jobs.rate;dc=west;queue=sms"])"));
  // a plain path is a series too, tagged with its name only
  EXPECT_EQ(get_json("/tags/findSeries?expr[]=name%3Dstatherd.web.temp.mean"),
            nlohmann::json::parse(R"(["statherd.web.temp.mean"])"));
  EXPECT_EQ(get_json("/tags/findSeries?expr=name%3D~statherd&expr=queue%21%3Dmail").size(), 2u);
  get_json("/tags/findSeries", 400);
  get_json("/tags/findSeries?expr=dc%21%3Deast", 400);  // matches "" alone
  get_json("/tags/findSeries?expr=dc", 400);
  EXPECT_EQ(get_json("/tags/autoComplete/tags?expr=dc%3Dwest"),
            nlohmann::json::parse(R"(["name", "queue"])"));
  EXPECT_EQ(get_json("/tags/autoComplete/tags?tagPrefix=d"), nlohmann::json::parse(R"(["dc"])"));
  EXPECT_EQ(get_json("/tags/autoComplete/values?tag=queue&expr=dc%3Dwest"),
            nlohmann::json::parse(R"(["mail", "sms"])"));
  EXPECT_EQ(get_json("/tags/autoComplete/values?tag=queue&valuePrefix=s"),
            nlohmann::json::parse(R"(["sms"])"));
  EXPECT_EQ(get_json("/tags/autoComplete/values?tag=dc&limit=1"),
            nlohmann::json::parse(R"(["east"])"));
  get_json("/tags/autoComplete/values", 400);
  ApiResponse post = routes_->handle({"POST", "/tags/findSeries", "", "expr=queue%3Dsms"});
  EXPECT_EQ(nlohmann::json::parse(post.body).size(), 1u) << post.body;
}

TEST_F(ApiRoutesTagsTest, SeriesByTagAndGroupByTagsRender) {
  auto west = get_json(
      "/render?from=1950&until=1990&target=seriesByTag(%27name%3Dstatherd.web.jobs.rate%27,"
      "%27dc%3Dwest%27)");
  ASSERT_EQ(west.size(), 2u);
  EXPECT_EQ(west[0]["target"], "statherd.web.jobs.rate;dc=west;queue=mail");
  EXPECT_EQ(west[0]["tags"], nlohmann::json::parse(
                                 R"({"name": "statherd.web.jobs.rate", "dc": "west",
                                     "queue": "mail"})"));
  EXPECT_EQ(values(west[0]), (std::vector<double>{10, 20, 30}));
  EXPECT_EQ(values(west[1]), (std::vector<double>{100, 200, 300}));
  auto grouped = get_json(
      "/render?from=1950&until=1990&target=groupByTags(seriesByTag(%27name%3D~statherd.web.jobs"
      "%27),%27sum%27,%27dc%27)");
  ASSERT_EQ(grouped.size(), 2u);
  EXPECT_EQ(grouped[0]["target"], "statherd.web.jobs.rate;dc=east");
  EXPECT_EQ(grouped[1]["target"], "statherd.web.jobs.rate;dc=west");
  EXPECT_EQ(grouped[1]["tags"],
            nlohmann::json::parse(R"({"name": "statherd.web.jobs.rate", "dc": "west"})"));
  EXPECT_EQ(values(grouped[0]), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(values(grouped[1]), (std::vector<double>{110, 220, 330}));
  // the call as written names an aggregate of it
  auto sum =
      get_json("/render?from=1950&until=1990&target=sumSeries(seriesByTag(%22dc%3Deast%22))");
  ASSERT_EQ(sum.size(), 1u);
  EXPECT_EQ(sum[0]["target"], "sumSeries(seriesByTag(\"dc=east\"))");
  get_json("/render?from=1950&until=1990&target=seriesByTag(%27dc%21%3Dx%27)", 400);
}

// One budget of path checks per request, shared by its seriesByTag() calls (each path checked
// costs one per expression), and no more expressions than reads.max_targets.
TEST_F(ApiRoutesTagsTest, SeriesByTagCallsShareTheRequestsBudget) {
  ApiRoutesOptions o;
  o.reads.max_match_steps = 30;  // a call below: 2 name values + 4 paths = 6 steps
  ApiRoutes small(token_, engine_, *store_, [] { return 2'000'000; }, o);
  auto render = [&](const std::string& target) {
    return small.handle({"GET", "/render?from=1950&until=1990&target=" + target, "", ""});
  };
  const std::string one = "seriesByTag(%27name%3D~statherd%27)";
  EXPECT_EQ(render(one).status, 200);
  std::string many = "sumSeries(" + one;
  for (int i = 0; i < 5; ++i) many += "," + one;
  many += ")";
  ApiResponse r = render(many);
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_NE(r.body.find("max_match_steps"), std::string::npos) << r.body;
  std::string exprs = "seriesByTag(%27name%3D~s%27";
  for (int i = 0; i < 100; ++i) exprs += ",%27x!%3D" + std::to_string(i) + "%27";
  r = render(exprs + ")");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("over the limit of 100"), std::string::npos) << r.body;
  EXPECT_EQ(render("seriesByTag()").status, 400);
  EXPECT_NE(render("seriesByTag(1)").body.find("no tag expression given"), std::string::npos);
  EXPECT_EQ(routes_->handle({"GET", "/tags/tagSeries", "", ""}).status, 405);
  EXPECT_EQ(routes_->handle({"POST", "/tags/tagMultiSeries", "", "path=a%3Bb%3Dc"}).status, 400);
}

TEST_F(ApiRoutesTagsTest, TaggedSeriesStayOutOfTheTree) {
  // graphite-web's tree holds carbon's _tagged/ files, not these names: globs and find skip
  // them, a target naming one exactly reads it
  EXPECT_EQ(get_json("/metrics/find?query=statherd.web.%2A").size(), 1u);  // temp
  EXPECT_EQ(get_json("/render?from=1950&until=1990&target=statherd.web.%2A.%2A").size(), 1u);
  auto exact = get_json(
      "/render?from=1950&until=1990&target=statherd.web.jobs.rate%3Bdc%3Deast%3Bqueue%3Dmail");
  ASSERT_EQ(exact.size(), 1u);
  EXPECT_EQ(values(exact[0]), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(get_json("/metrics/index.json"),
            nlohmann::json::parse(R"(["statherd.web.temp.mean"])"));
  EXPECT_EQ(get_json("/events/get_data?from=-1h"), nlohmann::json::array());
  get_json("/events/get_data?from=nonsense", 400);
}

}  // namespace
}  // namespace statherd::server
