// Walking Scales /status JSON trees into samples; URL defaults of the Scales source.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "agent/sources/scales_http.h"

namespace statherd::agent {
namespace {

std::map<std::string, Sample> walk(const std::string& json,
                                   const std::vector<std::string>& patterns = {}) {
  LabelPatternSet counters(patterns);
  auto r = scales_tree_samples(json, counters, 42);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
  std::map<std::string, Sample> by_name;
  if (r.ok())
    for (auto& s : *r) by_name[s.name] = s;
  return by_name;
}

std::string walk_error(const std::string& json) {
  LabelPatternSet counters({});
  auto r = scales_tree_samples(json, counters, 0);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.error().message;
}

TEST(ScalesTree, NestedLeavesBecomeDottedGaugesTextAndBools) {
  auto s = walk(R"({"server": {"db": {"connections": 4, "latency_ms": 1.5}},
                    "version": "2.1", "healthy": true, "degraded": false, "nothing": null,
                    "list": [1, 2]})");
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s["server.db.connections"].kind, Kind::Gauge);
  EXPECT_EQ(s["server.db.connections"].value, 4);
  EXPECT_EQ(s["server.db.connections"].timestamp_ms, 42);
  EXPECT_EQ(s["server.db.latency_ms"].value, 1.5);
  EXPECT_EQ(s["version"].kind, Kind::Text);
  EXPECT_EQ(s["version"].text, "2.1");
  EXPECT_EQ(s["healthy"].value, 1);
  EXPECT_EQ(s["degraded"].value, 0);
  EXPECT_EQ(s["degraded"].kind, Kind::Gauge);
}

TEST(ScalesTree, CounterPatternsMatchTheDottedName) {
  auto s = walk(R"({"web": {"requests": 10, "errors": 2, "queue": 3}})", {"web.requests", "*errors"});
  EXPECT_EQ(s["web.requests"].kind, Kind::Counter);
  EXPECT_EQ(s["web.errors"].kind, Kind::Counter);
  EXPECT_EQ(s["web.queue"].kind, Kind::Gauge);
}

TEST(ScalesTree, TickedMeterGivesCounterAndKeepsItsRates) {
  auto s = walk(R"({"hits": {"unit": "per second", "count": 120, "m1": 1.5, "m5": 0.9,
                             "m15": 0.4}})");
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s["hits.count"].kind, Kind::Counter);
  EXPECT_EQ(s["hits.count"].value, 120);
  EXPECT_EQ(s["hits.m1"].kind, Kind::Gauge);
  EXPECT_EQ(s["hits.m1"].value, 1.5);
  EXPECT_EQ(s["hits.m5"].value, 0.9);
  EXPECT_EQ(s["hits.m15"].value, 0.4);
}

TEST(ScalesTree, UntickedMeterIsStillACounter) {
  auto s = walk(R"({"hits": {"unit": "per second", "count": 0}})");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s["hits.count"].kind, Kind::Counter);
  EXPECT_EQ(s["hits.count"].value, 0);
}

// Scales refreshes a PMF's mean on its own window (every 20 s) while count grows on every
// call, so mean x count is no sum (the hostile review saw interval sums of -16.25): unknown.
TEST(ScalesTree, PmfBecomesSummaryWithAnUnknownSum) {
  auto s = walk(R"({"api": {"latency": {"count": 200, "min": 0.001, "max": 2.5, "mean": 0.25,
      "stddev": 0.1, "median": 0.2, "75percentile": 0.3, "95percentile": 0.8,
      "98percentile": 1.1, "99percentile": 1.6, "999percentile": 2.4}}})");
  ASSERT_EQ(s.size(), 1u);
  const Sample& l = s["api.latency"];
  ASSERT_EQ(l.kind, Kind::Distribution);
  const Distribution& d = *l.dist;
  EXPECT_EQ(d.form, Distribution::Form::Summary);
  EXPECT_EQ(d.count, 200);
  EXPECT_TRUE(d.sum_unknown);
  EXPECT_EQ(d.sum, 0);
  EXPECT_EQ(d.min, 0.001);
  EXPECT_EQ(d.max, 2.5);
  EXPECT_EQ(d.quantiles, (std::vector<std::pair<double, double>>{
                             {0.5, 0.2}, {0.75, 0.3}, {0.95, 0.8}, {0.98, 1.1}, {0.99, 1.6},
                             {0.999, 2.4}}));
}

TEST(ScalesTree, PythonNaNAndInfinityAreSkippedNotFatal) {
  auto s = walk(R"({"a": NaN, "b": Infinity, "c": -Infinity, "d": 1, "e": "NaN stays text",
                    "pmf": {"count": 3, "min": 1, "max": 2, "mean": NaN, "median": NaN}})");
  EXPECT_EQ(s.count("a"), 0u);
  EXPECT_EQ(s.count("b"), 0u);
  EXPECT_EQ(s.count("c"), 0u);
  EXPECT_EQ(s["d"].value, 1);
  EXPECT_EQ(s["e"].text, "NaN stays text");
  ASSERT_EQ(s["pmf"].kind, Kind::Distribution);
  EXPECT_EQ(s["pmf"].dist->count, 3);
  EXPECT_EQ(s["pmf"].dist->sum, 0);
  EXPECT_TRUE(s["pmf"].dist->quantiles.empty());
}

TEST(ScalesTree, LookalikesWithOtherKeysAreContainers) {
  // An unrefreshed PMF ({"count": N}) and objects with extra keys are walked as containers.
  auto s = walk(R"({"pmf": {"count": 1}, "odd": {"count": 2, "unit": "x", "extra": 1}})");
  EXPECT_EQ(s["pmf.count"].kind, Kind::Gauge);
  EXPECT_EQ(s["odd.count"].value, 2);
  EXPECT_EQ(s["odd.unit"].text, "x");
  EXPECT_EQ(s["odd.extra"].value, 1);
}

TEST(ScalesTree, WrongShapesAreErrors) {
  EXPECT_NE(walk_error("<html>nope</html>").find("not JSON"), std::string::npos);
  EXPECT_NE(walk_error("{\"a\": ").find("not JSON"), std::string::npos);
  EXPECT_NE(walk_error("").find("not JSON"), std::string::npos);
  EXPECT_EQ(walk_error("[1, 2]"), "the JSON answer is an array, not an object (a Scales stat tree)");
  EXPECT_EQ(walk_error("3"), "the JSON answer is a number, not an object (a Scales stat tree)");
  std::string deep(100, '[');
  EXPECT_EQ(walk_error("{\"a\":" + std::string(100, '{')),
            "the JSON tree nests deeper than 64 levels");
  EXPECT_EQ(walk_error(deep), "the JSON tree nests deeper than 64 levels");
}

TEST(ScalesTree, NestingUpToTheLimitIsWalked) {
  std::string json;
  for (int i = 0; i < kScalesMaxDepth; ++i) json += "{\"k\":";
  json += "1";
  for (int i = 0; i < kScalesMaxDepth; ++i) json += "}";
  auto s = walk(json);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s.begin()->first.size(), 2u * kScalesMaxDepth - 1);  // 64 "k" joined by '.'
}

TEST(ScalesRequestUrl, DefaultsPathAndAddsFormatJson) {
  EXPECT_EQ(scales_request_url("http://h:8080")->target, "/status/?format=json");
  EXPECT_EQ(scales_request_url("http://h:8080/")->target, "/?format=json");
  EXPECT_EQ(scales_request_url("http://h/stats/db")->target, "/stats/db?format=json");
  EXPECT_EQ(scales_request_url("http://h/s?query=x")->target, "/s?query=x&format=json");
  EXPECT_EQ(scales_request_url("http://h/s?format=prettyjson")->target, "/s?format=prettyjson");
  EXPECT_EQ(scales_request_url("http://h:81")->host_port(), "h:81");
  EXPECT_FALSE(scales_request_url("https://h/").ok());
  EXPECT_FALSE(scales_request_url("ftp://h/").ok());
}

TEST(EndpointSpec, SplitsAnOptionalAppName) {
  EXPECT_EQ(split_endpoint_spec("web=http://h:1/x").app, "web");
  EXPECT_EQ(split_endpoint_spec("web=http://h:1/x").url, "http://h:1/x");
  EXPECT_EQ(split_endpoint_spec("http://h:1/x?a=b").app, "");
  EXPECT_EQ(split_endpoint_spec("http://h:1/x?a=b").url, "http://h:1/x?a=b");
}

}  // namespace
}  // namespace statherd::agent
