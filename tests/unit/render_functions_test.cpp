// The /render target grammar, the function evaluator and the answer formats (server/render/).
// Semantics are replayed against the real graphite-web in tests/integration/
// test_graphite_web.py; these pin the parts that test cannot reach (errors, hostile input).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "server/render/functions.h"
#include "server/render/output.h"
#include "server/render/target.h"

namespace statherd::server::render {
namespace {

TEST(RenderTarget, NestedCallsWithEveryArgumentKind) {
  auto e = parse_target(
      "aliasSub(sumSeries(a.{b,c}.d, e.*), \"(^.*$)\", '\\1 A', 2.5, -3, 1e3, true, None, inf, "
      "x=False)");
  ASSERT_TRUE(e.ok()) << e.error().message;
  ASSERT_EQ(e->kind, Expr::Kind::kCall);
  EXPECT_EQ(e->text, "aliasSub");
  ASSERT_EQ(e->args.size(), 9u);
  EXPECT_EQ(e->args[0].args[0].text, "a.{b,c}.d");  // the comma in braces is the path's
  EXPECT_EQ(e->args[0].args[1].text, "e.*");
  EXPECT_EQ(e->args[1].text, "(^.*$)");
  EXPECT_EQ(e->args[2].text, "\\1 A");  // as written, no unescaping (graphite-web)
  EXPECT_EQ(e->args[3].kind, Expr::Kind::kFloat);
  EXPECT_EQ(e->args[4].kind, Expr::Kind::kInt);
  EXPECT_EQ(e->args[4].number, -3);
  EXPECT_EQ(e->args[5].kind, Expr::Kind::kFloat);
  EXPECT_EQ(e->args[5].number, 1000);
  EXPECT_TRUE(e->args[6].boolean);
  EXPECT_EQ(e->args[7].kind, Expr::Kind::kNone);
  EXPECT_EQ(e->args[8].kind, Expr::Kind::kInf);
  ASSERT_EQ(e->kwarg_names.size(), 1u);
  EXPECT_EQ(e->kwarg_names[0], "x");
  EXPECT_FALSE(e->kwarg_values[0].boolean);
}

TEST(RenderTarget, PipesBecomeTheFirstArgument) {
  auto e = parse_target("a.b.* | sumSeries() |alias('x')");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(to_string(*e), "alias(sumSeries(a.b.*),'x')");
}

TEST(RenderTarget, EscapesAndGlobsStayInThePath) {
  auto e = parse_target("a\\(1\\).b-c_d.[0-9]?.x=y");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->kind, Expr::Kind::kPath);
  EXPECT_EQ(e->text, "a(1).b-c_d.[0-9]?.x=y");
}

TEST(RenderTarget, BadTargetsAreErrorsWithTheirOffset) {
  for (const char* bad : {"sumSeries(a.b", "alias(a, 'x)", "alias(x=1, a.b)", "a.{b,", "a.{}",
                          "sumSeries(a.b))", "| alias('x')", "a.b | 3", "f(,)", ""}) {
    auto e = parse_target(bad);
    EXPECT_FALSE(e.ok()) << bad;
    if (!e.ok()) {
      EXPECT_NE(e.error().message.find("offset"), std::string::npos) << bad;
    }
  }
}

TEST(RenderTarget, DeepNestingIsAnErrorNotACrash) {
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "absolute(";
  deep += "a";
  for (int i = 0; i < 5000; ++i) deep += ")";
  auto e = parse_target(deep);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("nested"), std::string::npos);
  std::string braces(7000, '{');
  EXPECT_FALSE(parse_target("a." + braces + "b").ok());
}

TEST(RenderNames, PythonReprOfFloats) {
  EXPECT_EQ(py_repr(5), "5.0");
  EXPECT_EQ(py_repr(0.1), "0.1");
  EXPECT_EQ(py_repr(-2.5), "-2.5");
  EXPECT_EQ(py_repr(1e-5), "1e-05");
  EXPECT_EQ(py_repr(0.0001), "0.0001");
  EXPECT_EQ(py_repr(1e16), "1e+16");
  EXPECT_EQ(py_repr(123456789012345.0), "123456789012345.0");
  EXPECT_EQ(py_repr(1.0 / 3), "0.3333333333333333");
}

TEST(RenderNames, TimeOffsets) {
  EXPECT_EQ(*parse_time_offset("5min"), 300);
  EXPECT_EQ(*parse_time_offset("-1h"), -3600);
  EXPECT_EQ(*parse_time_offset("1d12h"), 86400 + 12 * 3600);
  EXPECT_EQ(*parse_time_offset("2weeks"), 14 * 86400);
  EXPECT_EQ(*parse_time_offset("1mon"), 30 * 86400);
  EXPECT_FALSE(parse_time_offset("5m").ok());  // m is neither min nor mon
  EXPECT_FALSE(parse_time_offset("x5s").ok());
  EXPECT_FALSE(parse_time_offset("99999999999999999999y").ok());  // no overflow
}

// A store of two series a.x, a.y from 100 s, step 10, 6 values each; records every fetch.
struct FakeStore {
  std::vector<std::tuple<std::string, int64_t, int64_t>> fetches;
  RenderContext context() {
    RenderContext ctx;
    ctx.from_s = 95;
    ctx.until_s = 150;
    ctx.now_s = 1000;
    ctx.fetch = [this](const std::string& expr, int64_t from,
                       int64_t until) -> Result<std::vector<Series>> {
      fetches.emplace_back(expr, from, until);
      std::vector<Series> out;
      if (expr != "a.*") return out;
      int64_t first = from - from % 10 + 10, end = until - until % 10 + 10;
      for (const char* name : {"a.x", "a.y"}) {
        Series s;
        s.name = name;
        s.path_expression = expr;
        s.start = first;
        s.end = end;
        s.step = 10;
        for (int64_t t = first; t < end; t += 10) {
          double v = name[2] == 'x' ? static_cast<double>(t - 90) / 10 : (t == 120 ? NAN : 5);
          s.values.push_back(v);
        }
        out.push_back(s);
      }
      return out;
    };
    return ctx;
  }
};

std::vector<Series> eval(FakeStore& store, const std::string& target) {
  auto e = parse_target(target);
  EXPECT_TRUE(e.ok()) << target;
  auto r = evaluate(*e, store.context());
  EXPECT_TRUE(r.ok()) << target << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::vector<Series>{};
}

TEST(RenderFunctions, SumSeriesSkipsNullsAndNamesItselfAfterThePattern) {
  FakeStore store;
  auto out = eval(store, "sumSeries(a.*)");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].name, "sumSeries(a.*)");
  // x: 1..6 at 100..150; y: 5 but null at 120
  std::vector<double> expected = {6, 7, 3, 9, 10, 11};
  ASSERT_EQ(out[0].values.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(out[0].values[i], expected[i]) << i;
}

// asPercent with nodes: each series of a group as a share of the group's sum (a.x and a.y
// are groups of one by node 1: each is 100 % of itself, null where it is null).
TEST(RenderFunctions, AsPercentByNodesGroupsSeriesAndTotals) {
  FakeStore store;
  auto out = eval(store, "asPercent(a.*,None,0)");  // one group: a
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "asPercent(a.x,sumSeries(a.*))");
  EXPECT_DOUBLE_EQ(out[0].values[0], 100.0 * 1 / 6);  // x 1, y 5
  EXPECT_DOUBLE_EQ(out[0].values[2], 100.0);           // y null at 120
  out = eval(store, "asPercent(a.*,None,1)");          // groups x and y
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].name, "asPercent(a.y,a.y)");
  EXPECT_TRUE(std::isnan(out[1].values[2]));
  EXPECT_DOUBLE_EQ(out[1].values[0], 100.0);
  auto e = parse_target("asPercent(a.*,5,1)");
  auto r = evaluate(*e, store.context());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("total must be None or a seriesList"), std::string::npos);
}

TEST(RenderFunctions, AliasByNodeOfAnAggregateUsesItsPath) {
  FakeStore store;
  auto out = eval(store, "aliasByNode(sumSeries(a.*),0)");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].name, "a");
  out = eval(store, "aliasSub(a.*, '^a\\.(.)$', 'got \\1')");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "got x");
}

TEST(RenderFunctions, MovingAverageFetchesTheWindowBeforeFrom) {
  FakeStore store;
  auto out = eval(store, "movingAverage(a.*,2)");
  ASSERT_EQ(store.fetches.size(), 2u);  // the argument, then again 2 steps earlier
  EXPECT_EQ(std::get<1>(store.fetches[1]), 95 - 20);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "movingAverage(a.x,2)");
  EXPECT_EQ(out[0].start, 100);
  // from 75: x at 80..150 = -1..6; the value at 100 averages 80 and 90: (-1 + 0) / 2
  EXPECT_EQ(out[0].values.front(), -0.5);
}

TEST(RenderFunctions, WrongCallsAreErrorsNamingTheFunction) {
  FakeStore store;
  auto ctx = store.context();
  for (const char* bad : {"frobnicate(a.*)", "scale(a.*)", "scale(a.*,'x')", "scale(3,2)",
                          "alias(a.*,'x',3)", "scale(a.*,nope=2)", "aggregate(a.*,'mode')",
                          "aliasSub(a.*,'(','x')", "delay(a.*,1e300)", "summarize(a.*,'0s')"}) {
    auto e = parse_target(bad);
    ASSERT_TRUE(e.ok()) << bad;
    auto r = evaluate(*e, ctx);
    EXPECT_FALSE(r.ok()) << bad;
  }
  auto r = evaluate(*parse_target("frobnicate(a.*)"), ctx);
  EXPECT_NE(r.error().message.find("frobnicate"), std::string::npos);
}

TEST(RenderFunctions, TooManySeriesIsRefused) {
  FakeStore store;
  auto ctx = store.context();
  ctx.max_series = 3;
  auto r = evaluate(*parse_target("sumSeries(a.*,a.*)"), ctx);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind(std::string(kTooManySeries), 0), 0u);
}

// A hostile reader's targets (review of issue #11's first part): each is an error or an
// answer, never a crash, a hang or an unbounded allocation.
Result<std::vector<Series>> try_eval(FakeStore& /*store*/, const std::string& target,
                                     RenderContext ctx) {
  auto e = parse_target(target);
  EXPECT_TRUE(e.ok()) << target;
  if (!e.ok()) return e.error();
  return evaluate(*e, ctx);
}

TEST(RenderHostile, PercentilesOutsideZeroToHundredAreErrors) {
  FakeStore store;
  for (const char* t :
       {"nPercentile(a.*,-100000000)", "nPercentile(a.*,-50)", "nPercentile(a.*,1e308)",
        "percentileOfSeries(a.*,101)", "removeAbovePercentile(a.*,-5)"}) {
    EXPECT_FALSE(try_eval(store, t, store.context()).ok()) << t;
  }
  auto top = eval(store, "nPercentile(a.*,100)");
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].values.front(), 6);  // the largest of a.x's 1..6
}

TEST(RenderHostile, RegularExpressionsRunInLinearTimeOnLongNames) {
  FakeStore store;
  const std::string long_name(15000, 'a');  // under the 16 KiB name limit
  // std::regex recursed once per character (a stack overflow here) and backtracked
  // exponentially on (a+)+c; RE2 does neither.
  auto out = eval(store, "aliasSub(alias(a.*,'" + long_name + "'),'(.*)','x')");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "x");
  out = eval(store, "grep(alias(a.*,'" + long_name + "'),'(a+)+c')");
  EXPECT_TRUE(out.empty());
  out = eval(store, "aliasSub(a.*,'^a\\.(?P<n>.)$','\\g<n>!')");  // Python's named groups
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "x!");
  EXPECT_FALSE(try_eval(store, "aliasSub(a.*,'(a)\\1','x')", store.context()).ok());
  EXPECT_FALSE(try_eval(store, "aliasSub(a.*,'(a)','\\2')", store.context()).ok());
}

TEST(RenderHostile, NamesCannotGrowWithoutBound) {
  FakeStore store;
  std::string refs;
  for (int i = 0; i < 50; ++i) refs += "\\1";
  std::string t = "a.*";
  for (int i = 0; i < 4; ++i) t = "aliasSub(" + t + ",'(.*)','" + refs + "')";
  auto r = try_eval(store, t, store.context());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("name longer"), std::string::npos) << r.error().message;
}

TEST(RenderHostile, RefetchingChainsAndMadeValuesAreBounded) {
  FakeStore store;
  std::string chain = "constantLine(1)";
  for (int i = 0; i < 40; ++i) chain += "|movingSum('1s')";  // 2^40 evaluations unbounded
  auto r = try_eval(store, chain, store.context());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind(std::string(kTooManySeries), 0), 0u) << r.error().message;
  auto ctx = store.context();
  ctx.from_s = 0;
  ctx.until_s = int64_t{100} * 365 * 86400;
  r = try_eval(store, "identity('x')", ctx);  // 52 million points
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind(std::string(kTooManySeries), 0), 0u) << r.error().message;
  EXPECT_FALSE(try_eval(store, "summarize(constantLine(1),'1s')", ctx).ok());
}

TEST(RenderHostile, KeywordSeriesListsAndEdgeArguments) {
  FakeStore store;
  auto out = eval(store, "movingAverage(seriesList=a.*,windowSize=2)");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "movingAverage(a.x,2)");
  out = eval(store, "timeShift(seriesList=a.*,timeShift='10s')");
  EXPECT_EQ(out.size(), 2u);
  auto ctx = store.context();
  ctx.until_s = ctx.from_s + 1;  // a one-second range: the step stays positive
  auto r = try_eval(store, "countSeries()", ctx);
  ASSERT_TRUE(r.ok());
  EXPECT_GE(r->at(0).step, 1);
  auto kept = eval(store, "filterSeries(a.*,'max','>',5)");  // a.x reaches 6, a.y stays 5
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].name, "a.x");
  r = try_eval(store, "filterSeries(a.*,'max','>')", store.context());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("threshold"), std::string::npos) << r.error().message;
}

TEST(RenderOutput, MaxDataPointsAlignsRunsToTheirWidth) {
  // 6 values from 110 step 10; 3 points wanted: runs of 2 steps are stamped at multiples of 20
  // (graphite-web's nudge moves the start to 120). graphite-web drops nudge/step - 1 values,
  // here none, so the run stamped 120 holds the values of 110 and 120: kept, for identical
  // answers.
  Series s;
  s.name = "a";
  s.start = 110;
  s.end = 170;
  s.step = 10;
  s.values = {1, 2, 3, 4, 5, 6};
  s.tags = {{"name", "a"}};
  std::vector<Series> list = {s};
  OutputOptions o;
  o.max_data_points = 3;
  size_t points = 0;
  std::string json = json_answer(list, o, points);
  EXPECT_EQ(json,
            R"([{"target":"a","tags":{"name":"a"},"datapoints":[[1.5,120],[3.5,140],[5.5,160]]}])");
  EXPECT_EQ(points, 3u);
  o = {};
  o.no_null_points = true;
  o.jsonp = "cb";
  s.values = {NAN, 1, NAN, NAN, NAN, NAN};
  list = {s};
  EXPECT_EQ(json_answer(list, o, points),
            R"(cb([{"target":"a","tags":{"name":"a"},"datapoints":[[1,120]]}]))");
}

}  // namespace
}  // namespace statherd::server::render
