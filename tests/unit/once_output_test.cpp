// --once JSON lines: every line must parse back (nlohmann) to the values that went in.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/once_output.h"

namespace statherd::agent {
namespace {

using nlohmann::json;

std::string render_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string render_number(double v) {
  std::string out;
  append_json_number(out, v);
  return out;
}

std::vector<json> parse_lines(const std::string& text) {
  std::vector<json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  return lines;
}

Sample make_sample(std::string name, Kind kind, double value) {
  Sample s;
  s.name = std::move(name);
  s.kind = kind;
  s.value = value;
  return s;
}

TEST(OnceOutput, EscapesQuotesBackslashesAndControlBytes) {
  EXPECT_EQ(render_string("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(render_string("\n\t\r\b\f"), R"("\n\t\r\b\f")");
  EXPECT_EQ(render_string(std::string("\x01\x1f\0", 3)), R"("\u0001\u001f\u0000")");
  EXPECT_EQ(json::parse(render_string(std::string("x\0y", 3))).get<std::string>(),
            std::string("x\0y", 3));
}

TEST(OnceOutput, KeepsValidUtf8AndEscapesInvalidBytesAsLatin1) {
  const std::string valid = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
  EXPECT_EQ(render_string(valid), "\"" + valid + "\"");
  EXPECT_EQ(render_string("a\xff" "b"), R"("a\u00ffb")");
  EXPECT_EQ(render_string("\xc3"), R"("\u00c3")");                 // truncated sequence
  EXPECT_EQ(render_string("\xc0\xaf"), R"("\u00c0\u00af")");       // overlong
  EXPECT_EQ(render_string("\xed\xa0\x80"), R"("\u00ed\u00a0\u0080")");  // surrogate
  EXPECT_EQ(json::parse(render_string("a\xff")).get<std::string>(), "a\xc3\xbf");
}

TEST(OnceOutput, PrintsIntegralNumbersWithoutFractionAndOthersShortest) {
  EXPECT_EQ(render_number(3.0), "3");
  EXPECT_EQ(render_number(-42.0), "-42");
  EXPECT_EQ(render_number(-0.0), "0");
  EXPECT_EQ(render_number(0.1), "0.1");
  EXPECT_EQ(render_number(9007199254740991.0), "9007199254740991");
  EXPECT_EQ(json::parse(render_number(9007199254740992.0)).get<double>(), 9007199254740992.0);
  EXPECT_EQ(json::parse(render_number(1e300)).get<double>(), 1e300);
  EXPECT_EQ(json::parse(render_number(2.5e-310)).get<double>(), 2.5e-310);
  EXPECT_EQ(json::parse(render_number(1.0 / 3)).get<double>(), 1.0 / 3);
}

TEST(OnceOutput, PrintsNanAndInfinityAsNull) {
  EXPECT_EQ(render_number(NAN), "null");
  EXPECT_EQ(render_number(INFINITY), "null");
  EXPECT_EQ(render_number(-INFINITY), "null");
}

TEST(OnceOutput, WritesOneObjectPerSampleWithSourceFields) {
  SourceSamples src;
  src.id = {"h1", "web\"app", 4242, 0, "/tmp/web-4242-4242.mmstats"};
  src.samples.push_back(make_sample("requests.count", Kind::Counter, 12345));
  src.samples.push_back(make_sample("load", Kind::Gauge, 0.25));
  src.samples.push_back(make_sample("broken", Kind::Gauge, NAN));
  Sample text = make_sample("org.python.version", Kind::Text, 0);
  text.text = "3.11.2\n";
  text.tags = {{"k", "v"}, {"zone", "a;b"}};
  src.samples.push_back(text);
  std::string out;
  append_once_lines(out, src);
  auto lines = parse_lines(out);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], json::parse(R"({"source":"/tmp/web-4242-4242.mmstats","app":"web\"app",
      "pid":4242,"name":"requests.count","kind":"counter","value":12345,"tags":{}})"));
  EXPECT_EQ(lines[1]["kind"], "gauge");
  EXPECT_EQ(lines[1]["value"].get<double>(), 0.25);
  EXPECT_TRUE(lines[2]["value"].is_null());
  EXPECT_EQ(lines[3]["kind"], "text");
  EXPECT_EQ(lines[3]["value"], "3.11.2\n");
  EXPECT_EQ(lines[3]["tags"], json::parse(R"({"k":"v","zone":"a;b"})"));
  EXPECT_EQ(out.find("12345.0"), std::string::npos);
}

TEST(OnceOutput, PrintsUnknownPidAsNull) {
  SourceSamples src;
  src.id.path = "http://127.0.0.1:8080/status";
  src.samples.push_back(make_sample("x", Kind::Gauge, 1));
  std::string out;
  append_once_lines(out, src);
  auto lines = parse_lines(out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0]["pid"].is_null());
  EXPECT_EQ(lines[0]["source"], "http://127.0.0.1:8080/status");
}

TEST(OnceOutput, PrintsDistributionsAsObjects) {
  SourceSamples src;
  src.id = {"h", "app", 1, 0, "/p"};
  auto summary = std::make_shared<Distribution>();
  summary->form = Distribution::Form::Summary;
  summary->count = 10;
  summary->sum = 55;
  summary->min = 1;
  summary->max = 10;
  summary->quantiles = {{0.5, 5.5}, {0.99, 9.9}};
  Sample s1 = make_sample("latency", Kind::Distribution, 0);
  s1.dist = summary;
  auto sketch = std::make_shared<Distribution>();
  for (int i = 1; i <= 100; ++i) sketch->sketch.add(i);
  Sample s2 = make_sample("sizes", Kind::Distribution, 0);
  s2.dist = sketch;
  auto buckets = std::make_shared<Distribution>();
  buckets->form = Distribution::Form::Buckets;
  buckets->bucket_upper_bounds = {0.1, INFINITY};
  buckets->bucket_counts = {3, 4};
  buckets->count = 7;
  buckets->sum = 2.5;
  Sample s3 = make_sample("h", Kind::Distribution, 0);
  s3.dist = buckets;
  src.samples = {s1, s2, s3};
  std::string out;
  append_once_lines(out, src);
  auto lines = parse_lines(out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["value"], json::parse(R"({"count":10,"sum":55,"min":1,"max":10,
      "quantiles":{"0.5":5.5,"0.99":9.9}})"));
  EXPECT_EQ(lines[1]["value"]["count"], 100);
  EXPECT_EQ(lines[1]["value"]["min"], 1);
  EXPECT_EQ(lines[1]["value"]["max"], 100);
  EXPECT_NEAR(lines[1]["value"]["p50"].get<double>(), 50, 1.5);
  EXPECT_EQ(lines[2]["value"], json::parse(R"({"count":7,"sum":2.5,
      "buckets":[[0.1,3],["+Inf",4]]})"));
}

}  // namespace
}  // namespace statherd::agent
