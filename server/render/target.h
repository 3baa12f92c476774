// The target grammar of Graphite's /render (graphite-web 1.1): a path expression, or a call of
// a function with positional then keyword arguments, each a string ('..' or ".."), a number
// (integer, decimal, scientific), true/false, none, inf, or another expression; and the pipe
// `a.b.* | sumSeries() | alias("x")`, which passes the left side as the first argument of the
// call on its right. A path expression keeps its globs (`*`, `?`, `[a-z]`, `{a,b}`) for the
// store, with `\(`-style escapes taken out, as graphite-web does.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace statherd::server::render {

struct Expr {
  enum class Kind { kPath, kCall, kString, kInt, kFloat, kBool, kNone, kInf };
  Kind kind = Kind::kNone;
  // kPath: the path expression; kCall: the function's name; kString: the text between the
  // quotes as written (no unescaping, as graphite-web); kInt/kFloat: the number as written.
  std::string text;
  double number = 0;       // kInt, kFloat
  bool boolean = false;    // kBool
  std::vector<Expr> args;  // kCall: positional, piped value first
  // kCall: keyword arguments, names and values in the same order (two vectors: a pair would
  // need Expr complete here)
  std::vector<std::string> kwarg_names;
  std::vector<Expr> kwarg_values;
  // kCall: the call as written, from its name to its ')' (graphite-web's call.raw: the path
  // expression of seriesByTag()'s series).
  std::string raw;
};

// The parsed target, or an error naming the offset and what was expected there.
Result<Expr> parse_target(std::string_view text);

// The expression written back as graphite-web's evaluator would see it (tests, errors).
std::string to_string(const Expr& e);

}  // namespace statherd::server::render
