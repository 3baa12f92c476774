// Graphite's render functions, as graphite-web 1.1.8 computes them (graphite/render/functions.py
// is the reference the integration test replays against): the evaluator of a parsed target
// (server/render/target.h) and the function library. Names, values, None handling and the
// order of the answer follow graphite-web, so a Grafana panel shows the same lines.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "server/render/series.h"
#include "server/render/target.h"

namespace statherd::server::render {

struct RenderContext {
  int64_t from_s = 0, until_s = 0;  // the request's times (from < until)
  int64_t now_s = 0;
  double xfiles_factor = 0;  // graphite-web's DEFAULT_XFILES_FACTOR
  // The stored series a path expression matches over [from_s, until_s], sorted by name, each
  // named by its path with path_expression set to the expression; an error (a 413) when a
  // read limit is passed. Called once per path expression and per time range.
  std::function<Result<std::vector<Series>>(const std::string& path_expression, int64_t from_s,
                                            int64_t until_s)>
      fetch;
  // seriesByTag(): the stored series whose tags match the expressions (server/graphite_tags.h),
  // sorted by name, each with path_expression `call` (the call as written); an error for a
  // bad expression or a read limit. Unset: seriesByTag() is an error.
  std::function<Result<std::vector<Series>>(const std::string& call,
                                            const std::vector<std::string>& expressions,
                                            int64_t from_s, int64_t until_s)>
      fetch_tagged;
  size_t max_series = 10'000;  // series alive in one evaluation (hostile nesting)
  // The work one target may do: function calls (each refetching function evaluates its
  // argument again, so nesting them multiplies), and values the functions make (summarize,
  // identity, moving windows over long ranges); past either, an error (a 413).
  size_t max_calls = 10'000;
  uint64_t max_values = 20'000'000;
};

// The start of the error evaluate() returns when a target would hold more than max_series or
// do more than max_calls / max_values (a 413, where other errors are 400s).
inline constexpr std::string_view kTooManySeries = "the target would hold more than";

// A target evaluated: its series in graphite-web's order. An unknown function, a wrong
// argument or a failed fetch is an error whose message names the function.
Result<std::vector<Series>> evaluate(const Expr& target, const RenderContext& ctx);

struct FunctionParam {
  std::string name;
  std::string type;  // graphite-web's ParamTypes: seriesList, seriesLists, float, integer,
                     // string, boolean, node, nodeOrTag, aggFunc, interval, intOrInterval
  bool required = false;
  bool multiple = false;  // repeated (the *name of the signature)
};
struct FunctionInfo {
  std::string name;
  std::string group;   // graphite-web's group: Alias, Combine, Transform, Calculate, Filter...
  std::string params;  // "seriesList, factor" (for /functions; * marks the repeated one)
  std::vector<FunctionParam> param_list;
  std::string description;
};
// Every function evaluate() knows, sorted by name.
const std::vector<FunctionInfo>& function_list();

// Graphite's parseTimeOffset ("5min", "-1h", "1d12h"): seconds, or an error.
Result<int64_t> parse_time_offset(std::string_view text);

// Python's repr() of a float ("1.0", "0.1", "1e-05", "1e+16"), for names as graphite-web
// writes them.
std::string py_repr(double v);

}  // namespace statherd::server::render
