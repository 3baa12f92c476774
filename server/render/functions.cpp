#include "server/render/functions.h"

#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "server/graphite_tags.h"
#include "server/graphite_time.h"

namespace statherd::server::render {
namespace {

// A wrong argument or an unknown function: thrown inside the evaluator, returned as an Error
// by evaluate(); nothing outside this file sees it.
struct RenderError : std::runtime_error {
  RenderError(const std::string& message, std::string h)
      : std::runtime_error(message), hint(std::move(h)) {}
  explicit RenderError(const std::string& message) : RenderError(message, {}) {}
  std::string hint;
};
// An error a fetch returned (a read limit): passed through with its own hint.
struct FetchError : std::runtime_error {
  explicit FetchError(Error e) : std::runtime_error(e.message), error(std::move(e)) {}
  Error error;
};

using SeriesList = std::vector<Series>;

struct Value {
  enum class Kind { kSeries, kNumber, kString, kBool, kNone };
  Kind kind = Kind::kNone;
  SeriesList series;
  double number = 0;
  bool is_int = false;
  std::string text;
  bool boolean = false;
};

// ---- Python's formatting, as graphite-web names series with it ----

// "%g"
std::string fmt_g(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// str() of an evaluated number argument: an int as written, a float as repr().
std::string py_str(const Value& v) {
  if (v.kind == Value::Kind::kNumber) {
    if (v.is_int) return std::to_string(static_cast<long long>(v.number));
    return py_repr(v.number);
  }
  if (v.kind == Value::Kind::kBool) return v.boolean ? "True" : "False";
  if (v.kind == Value::Kind::kNone) return "None";
  return v.text;
}

// Python's round(x, 6): the decimal rounding of the exact binary value, half to even, as
// glibc's printf does it.
double py_round6(double x) {
  if (!std::isfinite(x)) return x;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.6f", x);
  return std::strtod(buf, nullptr);
}

// A number argument used as a count or an index: an error, not undefined behaviour, when it is
// not finite or beyond +-1e9.
int64_t to_int(double v, const std::string& what) {
  if (!(v >= -1e9 && v <= 1e9)) throw RenderError(what + ": " + py_repr(v) + " is out of range");
  return static_cast<int64_t>(v);
}

// ---- graphite.functions.safe and the aggregation functions ----

std::vector<double> non_null(const std::vector<double>& values) {
  std::vector<double> out;
  out.reserve(values.size());
  for (double v : values)
    if (!is_none(v)) out.push_back(v);
  return out;
}
double py_sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

using AggFn = double (*)(const std::vector<double>&);

double agg_sum(const std::vector<double>& row) {
  auto v = non_null(row);
  return v.empty() ? kNone : py_sum(v);
}
double agg_average(const std::vector<double>& row) {
  auto v = non_null(row);
  return v.empty() ? kNone : py_sum(v) / static_cast<double>(v.size());
}
double agg_avg_zero(const std::vector<double>& row) {
  if (row.empty()) return kNone;
  double s = 0;
  for (double x : row) s += is_none(x) ? 0.0 : x;
  return s / static_cast<double>(row.size());
}
double agg_median(const std::vector<double>& row) {
  auto v = non_null(row);
  if (v.empty()) return kNone;
  std::sort(v.begin(), v.end());
  size_t mid = v.size() / 2;
  return v.size() % 2 == 0 ? (v[mid - 1] + v[mid]) / 2 : v[mid];
}
double agg_min(const std::vector<double>& row) {
  auto v = non_null(row);
  return v.empty() ? kNone : *std::min_element(v.begin(), v.end());
}
double agg_max(const std::vector<double>& row) {
  auto v = non_null(row);
  return v.empty() ? kNone : *std::max_element(v.begin(), v.end());
}
double agg_diff(const std::vector<double>& row) {
  auto v = non_null(row);
  if (v.empty()) return kNone;
  double s = v[0];
  for (size_t i = 1; i < v.size(); ++i) s += -v[i];
  return s;
}
double agg_stddev(const std::vector<double>& row) {
  auto v = non_null(row);
  if (v.empty()) return kNone;
  double avg = py_sum(v) / static_cast<double>(v.size());
  double s = 0;
  for (double x : v) s = s + (x - avg) * (x - avg);
  return std::sqrt(s / static_cast<double>(v.size()));
}
double agg_count(const std::vector<double>& row) {
  return static_cast<double>(non_null(row).size());
}
double agg_range(const std::vector<double>& row) {
  double hi = agg_max(row), lo = agg_min(row);
  return is_none(hi) || is_none(lo) ? kNone : hi - lo;
}
double agg_multiply(const std::vector<double>& row) {
  if (row.empty()) return kNone;
  double p = row[0];
  for (double x : row)
    if (is_none(x)) return kNone;
  for (size_t i = 1; i < row.size(); ++i) p *= row[i];
  return p;
}
double agg_last(const std::vector<double>& row) {
  for (auto it = row.rbegin(); it != row.rend(); ++it)
    if (!is_none(*it)) return *it;
  return kNone;
}

AggFn agg_function(const std::string& name) {
  static const std::unordered_map<std::string, AggFn> kFns = {
      {"average", agg_average}, {"avg", agg_average},       {"avg_zero", agg_avg_zero},
      {"median", agg_median},   {"sum", agg_sum},           {"total", agg_sum},
      {"min", agg_min},         {"max", agg_max},           {"diff", agg_diff},
      {"stddev", agg_stddev},   {"count", agg_count},       {"range", agg_range},
      {"rangeOf", agg_range},   {"multiply", agg_multiply}, {"last", agg_last},
      {"current", agg_last}};
  auto it = kFns.find(name);
  if (it == kFns.end()) {
    throw RenderError("unsupported aggregation function: " + name,
                      "use one of average, avg_zero, median, sum, min, max, diff, stddev, "
                      "count, range, multiply, last");
  }
  return it->second;
}

// ---- series helpers (graphite.render.functions' utilities) ----

int64_t gcd64(int64_t a, int64_t b) {
  return b == 0 ? a : gcd64(b, a % b);
}
int64_t lcm64(int64_t a, int64_t b) {
  if (a == b) return a;
  if (a < b) std::swap(a, b);
  return a / gcd64(a, b) * b;
}

struct Normalized {
  std::vector<Series*> series;
  int64_t start = 0, end = 0, step = 1;
};
// normalize(): one step (the lcm) for all, each read values_per_point at a time.
std::optional<Normalized> normalize(std::vector<Series*> all) {
  if (all.empty()) return std::nullopt;
  Normalized n;
  n.step = all[0]->step;
  for (Series* s : all) n.step = lcm64(n.step, s->step);
  n.start = all[0]->start;
  n.end = all[0]->end;
  for (Series* s : all) {
    s->values_per_point = static_cast<size_t>(n.step / s->step);
    n.start = std::min(n.start, s->start);
    n.end = std::max(n.end, s->end);
  }
  n.end -= (n.end - n.start) % n.step;
  n.series = std::move(all);
  return n;
}

// izip_longest(*series): rows of one value per series (None past a series' end).
std::vector<std::vector<double>> rows_of(const std::vector<Series*>& list) {
  std::vector<std::vector<double>> columns;
  size_t longest = 0;
  for (const Series* s : list) {
    columns.push_back(s->read());
    longest = std::max(longest, columns.back().size());
  }
  std::vector<std::vector<double>> rows(longest, std::vector<double>(list.size(), kNone));
  for (size_t c = 0; c < columns.size(); ++c)
    for (size_t r = 0; r < columns[c].size(); ++r) rows[r][c] = columns[c][r];
  return rows;
}

std::string format_path_expressions(const std::vector<Series*>& list) {
  std::vector<std::string> seen;
  for (const Series* s : list)
    if (std::find(seen.begin(), seen.end(), s->path_expression) == seen.end())
      seen.push_back(s->path_expression);
  std::string out;
  for (size_t i = 0; i < seen.size(); ++i) out += (i ? "," : "") + seen[i];
  return out;
}

Series make_series(std::string name, int64_t start, int64_t end, int64_t step,
                   std::vector<double> values, double xff) {
  Series s;
  s.name = name;
  s.path_expression = std::move(name);
  s.start = start;
  s.end = end;
  s.step = step;
  s.values = std::move(values);
  s.xfiles_factor = xff;
  s.tags = {{"name", s.name}};
  return s;
}

// series.copy(name=..., values=...): a new TimeSeries (path expression = the new name).
Series copy_series(const Series& s, std::string name, std::vector<double> values) {
  Series c = s;
  c.name = name;
  c.path_expression = std::move(name);
  c.values = std::move(values);
  c.values_per_point = 1;
  return c;
}

bool xff_ok(size_t non_null_count, size_t total, double xff) {
  if (non_null_count == 0 || total == 0) return false;
  return static_cast<double>(non_null_count) / static_cast<double>(total) >= xff;
}
bool xff_row(const std::vector<double>& row, double xff) {
  size_t n = 0;
  for (double v : row) n += is_none(v) ? 0 : 1;
  return xff_ok(n, row.size(), xff);
}

// aggregate(): one series named "<func>Series(<path expressions>)".
SeriesList aggregate(const RenderContext& ctx, std::vector<Series*> list, std::string func,
                     std::optional<double> xff = std::nullopt) {
  std::string raw = func;
  if (func.size() > 6 && func.compare(func.size() - 6, 6, "Series") == 0)
    func.resize(func.size() - 6);
  AggFn fn;
  try {
    fn = agg_function(func);
  } catch (const RenderError&) {
    throw RenderError("unsupported aggregation function: " + raw);
  }
  auto n = normalize(std::move(list));
  if (!n) return {};
  const double factor = xff.value_or(ctx.xfiles_factor);
  std::string name = func + "Series(" + format_path_expressions(n->series) + ")";
  std::vector<double> values;
  for (const auto& row : rows_of(n->series))
    values.push_back(xff_row(row, factor) ? fn(row) : kNone);
  // The tags all inputs share, then name and aggregatedBy.
  std::map<std::string, std::string> tags = n->series[0]->tags;
  for (const Series* s : n->series) {
    for (auto it = tags.begin(); it != tags.end();) {
      auto other = s->tags.find(it->first);
      it = other == s->tags.end() || other->second != it->second ? tags.erase(it) : ++it;
    }
  }
  Series out = make_series(name, n->start, n->end, n->step, std::move(values), factor);
  out.tags = std::move(tags);
  if (!out.tags.count("name")) out.tags["name"] = name;
  out.tags["aggregatedBy"] = func;
  return {std::move(out)};
}

std::vector<Series*> pointers(SeriesList& list) {
  std::vector<Series*> p;
  for (Series& s : list) p.push_back(&s);
  return p;
}

// The first path expression of a name like "sumSeries(a.b.*)" (graphite-web's
// _getFirstPathExpression); the name itself when it does not parse.
std::string first_path_expression(const std::string& name) {
  auto parsed = parse_target(name);
  if (!parsed) return name;
  const Expr* e = &*parsed;
  while (e->kind == Expr::Kind::kCall && !e->args.empty()) e = &e->args[0];
  return e->kind == Expr::Kind::kPath ? e->text : std::string();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    parts.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return parts;
    start = at + 1;
  }
}

// getNodeOrTag: node n of the name (Python indexing, negative from the end), or tag n.
std::string node_or_tag(const Series& s, const Value& n, const std::string& path) {
  if (n.kind == Value::Kind::kNumber && n.number == std::floor(n.number)) {
    std::string base = path.substr(0, path.find(';'));
    auto nodes = split(base, '.');
    auto i = to_int(n.number, "node");
    auto size = static_cast<int64_t>(nodes.size());
    if (i < 0) i += size;
    if (i >= 0 && i < size) return nodes[static_cast<size_t>(i)];
  }
  auto it = s.tags.find(py_str(n));
  return it == s.tags.end() ? std::string() : it->second;
}

std::string agg_key(const Series& s, const std::vector<Value>& nodes) {
  std::string path = s.name;
  if (!s.name.empty() && s.name.back() == ')') {
    std::string first = first_path_expression(s.name);
    if (!first.empty()) path = first;
  }
  std::string key;
  for (size_t i = 0; i < nodes.size(); ++i) key += (i ? "." : "") + node_or_tag(s, nodes[i], path);
  return key;
}

constexpr size_t kMaxRegex = 512;
constexpr int64_t kMaxOffset = int64_t{100} * 365 * 86400;  // time offsets: at most 100 years

// A regular expression of aliasSub, grep or exclude: RE2, linear in the name whatever the
// pattern (Python's syntax but for backreferences and lookarounds in the pattern).
std::unique_ptr<RE2> compile_regex(const std::string& pattern, const std::string& fn) {
  if (pattern.size() > kMaxRegex)
    throw RenderError(fn + ": the pattern is longer than " + std::to_string(kMaxRegex));
  RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_unique<RE2>(pattern, options);
  if (!re->ok()) {
    throw RenderError(fn + ": invalid regular expression '" + pattern + "': " + re->error(),
                      "RE2 syntax (Python's, without backreferences or lookarounds)");
  }
  return re;
}

// Python's re.sub replacement (\1, \g<1>, \g<name>, \\, \n, \t) as an RE2 rewrite string.
std::string re2_rewrite(const std::string& py, const RE2& re) {
  std::string out;
  for (size_t i = 0; i < py.size(); ++i) {
    char c = py[i];
    if (c != '\\' || i + 1 == py.size()) {
      out += c == '\\' ? "\\\\" : std::string(1, c);
      continue;
    }
    char d = py[++i];
    std::string group;
    if (std::isdigit(static_cast<unsigned char>(d))) {
      group = std::string(1, d);
      if (i + 1 < py.size() && std::isdigit(static_cast<unsigned char>(py[i + 1])))
        group += py[++i];
    } else if (d == 'g' && i + 1 < py.size() && py[i + 1] == '<') {
      size_t close = py.find('>', i + 2);
      if (close == std::string::npos) throw RenderError("aliasSub: \\g< without its >");
      group = py.substr(i + 2, close - i - 2);
      i = close;
      if (!group.empty() &&
          !std::all_of(group.begin(), group.end(), [](char ch) { return std::isdigit(ch); })) {
        auto named = re.NamedCapturingGroups().find(group);
        if (named == re.NamedCapturingGroups().end())
          throw RenderError("aliasSub: no group named '" + group + "'");
        group = std::to_string(named->second);
      }
    } else {
      static const std::map<char, std::string> kEscapes = {{'n', "\n"},    {'t', "\t"}, {'r', "\r"},
                                                           {'\\', "\\\\"}, {'a', "\a"}, {'f', "\f"},
                                                           {'v', "\v"}};
      auto it = kEscapes.find(d);
      out += it != kEscapes.end() ? it->second : "\\\\" + std::string(1, d);
      continue;
    }
    if (group.empty() || std::stoi(group) > re.NumberOfCapturingGroups() || group.size() > 1) {
      throw RenderError("aliasSub: the replacement refers to group " + group +
                        ", the pattern "
                        "has " +
                        std::to_string(re.NumberOfCapturingGroups()));
    }
    out += "\\" + group;
  }
  return out;
}

// ---- the evaluator ----

class Evaluator;
struct Call;
using Impl = SeriesList (*)(Call&);

struct FunctionDef {
  const char* name;
  const char* group;
  std::vector<std::string> params;  // "*name": the rest of the positional arguments
  Impl impl;
};
const std::unordered_map<std::string, const FunctionDef*>& registry();

// What one evaluate() may still spend, shared by the evaluations of refetched arguments.
struct Work {
  size_t calls_left;
  uint64_t values_left;
};

constexpr size_t kMaxName = 16 * 1024;  // a series name longer than this is an error

class Evaluator {
 public:
  Evaluator(const RenderContext& ctx, Work& work) : ctx_(ctx), work_(work) {}
  void charge_values(uint64_t n) {
    if (n > work_.values_left) {
      throw FetchError(Error{std::string(kTooManySeries) + " " + std::to_string(ctx_.max_values) +
                                 " values made by functions",
                             "shorten from/until, use a coarser interval, or fewer functions"});
    }
    work_.values_left -= n;
  }
  Value value(const Expr& e);
  SeriesList series_of(const Expr& e, const RenderContext& ctx);
  // graphite-web fetches seriesByTag() as a path: its string arguments are the tag
  // expressions (any other argument, a piped one too, is left out), the call as written the
  // path expression of its series.
  Value series_by_tag(const Expr& e) {
    if (!ctx_.fetch_tagged) throw RenderError("seriesByTag: no tag database here");
    std::vector<std::string> expressions;
    for (const Expr& a : e.args)
      if (a.kind == Expr::Kind::kString) expressions.push_back(a.text);
    auto fetched = ctx_.fetch_tagged(e.raw, expressions, ctx_.from_s, ctx_.until_s);
    if (!fetched) throw FetchError(fetched.error());
    Value v;
    v.kind = Value::Kind::kSeries;
    v.series = std::move(*fetched);
    count(v.series.size());
    return v;
  }
  const RenderContext& ctx() const { return ctx_; }

  void count(size_t n) {
    alive_ += n;
    if (alive_ > ctx_.max_series) {
      throw FetchError(
          Error{std::string(kTooManySeries) + " " + std::to_string(ctx_.max_series) + " series",
                "narrow the pattern, or raise reads.max_paths"});
    }
  }

 private:
  const RenderContext& ctx_;
  Work& work_;
  size_t alive_ = 0;
};

struct Call {
  Evaluator& ev;
  const RenderContext& ctx;
  const Expr& expr;
  const FunctionDef& def;
  std::vector<std::optional<Value>> bound;  // by declared parameter
  std::vector<Value> rest;                  // the "*" parameter's values

  std::string fn() const { return def.name; }
  bool has(size_t i) const {
    return i < bound.size() && bound[i] && bound[i]->kind != Value::Kind::kNone;
  }
  const Value& arg(size_t i) const {
    if (!has(i)) {
      throw RenderError(fn() + ": the argument '" + def.params[i] + "' is missing",
                        "see GET /functions for " + fn() + "'s parameters");
    }
    return *bound[i];
  }
  SeriesList series(size_t i) {
    const Value& v = arg(i);
    if (v.kind != Value::Kind::kSeries) {
      throw RenderError(fn() + ": the argument '" + def.params[i] +
                        "' must be a series list, "
                        "not " +
                        py_str(v));
    }
    return std::move(bound[i]->series);  // each parameter is read once
  }
  double number(size_t i) const {
    const Value& v = arg(i);
    if (v.kind != Value::Kind::kNumber)
      throw RenderError(fn() + ": the argument '" + def.params[i] + "' must be a number");
    return v.number;
  }
  double number(size_t i, double fallback) const { return has(i) ? number(i) : fallback; }
  std::optional<double> opt_number(size_t i) const {
    if (!has(i)) return std::nullopt;
    return number(i);
  }
  std::string text(size_t i) const {
    const Value& v = arg(i);
    if (v.kind != Value::Kind::kString)
      throw RenderError(fn() + ": the argument '" + def.params[i] + "' must be a string");
    return v.text;
  }
  std::string text(size_t i, const std::string& fallback) const {
    return has(i) ? text(i) : fallback;
  }
  bool flag(size_t i, bool fallback) const {
    if (!has(i)) return fallback;
    const Value& v = arg(i);
    if (v.kind == Value::Kind::kBool) return v.boolean;
    if (v.kind == Value::Kind::kNumber) return v.number != 0;
    throw RenderError(fn() + ": the argument '" + def.params[i] + "' must be true or false");
  }
  // The series lists of the "*" parameter, flattened.
  SeriesList rest_series() const {
    SeriesList all;
    for (const Value& v : rest) {
      if (v.kind != Value::Kind::kSeries)
        throw RenderError(fn() + ": every argument must be a series list, not " + py_str(v));
      all.insert(all.end(), v.series.begin(), v.series.end());
    }
    return all;
  }
  // The first argument evaluated again over other times (movingAverage, timeShift).
  SeriesList first_again(int64_t from_s, int64_t until_s) {
    RenderContext shifted = ctx;
    shifted.from_s = from_s;
    shifted.until_s = until_s;
    return ev.series_of(first_expr(), shifted);
  }
  // The expression of the first parameter, given by position or by name.
  const Expr& first_expr() const {
    if (!expr.args.empty()) return expr.args[0];
    for (size_t k = 0; k < expr.kwarg_names.size(); ++k)
      if (expr.kwarg_names[k] == def.params.at(0)) return expr.kwarg_values[k];
    throw RenderError(fn() + ": the argument '" + def.params.at(0) + "' is missing");
  }
  void charge_values(uint64_t n) { ev.charge_values(n); }
};

Value Evaluator::value(const Expr& e) {
  Value v;
  switch (e.kind) {
    case Expr::Kind::kPath: {
      auto fetched = ctx_.fetch(e.text, ctx_.from_s, ctx_.until_s);
      if (!fetched) throw FetchError(fetched.error());
      v.kind = Value::Kind::kSeries;
      v.series = std::move(*fetched);
      count(v.series.size());
      return v;
    }
    case Expr::Kind::kString:
      v.kind = Value::Kind::kString;
      v.text = e.text;
      return v;
    case Expr::Kind::kInt:
    case Expr::Kind::kFloat:
    case Expr::Kind::kInf:
      v.kind = Value::Kind::kNumber;
      v.number = e.number;
      v.is_int = e.kind == Expr::Kind::kInt;
      return v;
    case Expr::Kind::kBool:
      v.kind = Value::Kind::kBool;
      v.boolean = e.boolean;
      return v;
    case Expr::Kind::kNone:
      return v;
    case Expr::Kind::kCall:
      break;
  }
  if (work_.calls_left == 0) {
    throw FetchError(Error{
        std::string(kTooManySeries) + " " + std::to_string(ctx_.max_calls) + " function calls",
        "nest fewer functions that fetch again (movingAverage, timeShift)"});
  }
  --work_.calls_left;
  if (e.text == "seriesByTag") return series_by_tag(e);
  auto it = registry().find(e.text);
  if (it == registry().end()) {
    throw RenderError("unknown function: " + e.text,
                      "GET /functions lists the functions statherd implements");
  }
  const FunctionDef& def = *it->second;
  Call call{*this, ctx_, e, def, {}, {}};
  call.bound.resize(def.params.size());
  bool variadic = !def.params.empty() && def.params.back()[0] == '*';
  size_t fixed = variadic ? def.params.size() - 1 : def.params.size();
  for (size_t i = 0; i < e.args.size(); ++i) {
    Value a = value(e.args[i]);
    if (i < fixed) {
      call.bound[i] = std::move(a);
    } else if (variadic) {
      call.rest.push_back(std::move(a));
    } else {
      throw RenderError(def.name + std::string(": too many arguments (") +
                            std::to_string(e.args.size()) + ", at most " + std::to_string(fixed) +
                            ")",
                        "see GET /functions for its parameters");
    }
  }
  for (size_t k = 0; k < e.kwarg_names.size(); ++k) {
    const std::string& name = e.kwarg_names[k];
    const Expr& expr = e.kwarg_values[k];
    auto p =
        std::find(def.params.begin(), def.params.begin() + static_cast<ptrdiff_t>(fixed), name);
    if (p == def.params.begin() + static_cast<ptrdiff_t>(fixed)) {
      throw RenderError(def.name + std::string(": no parameter named '") + name + "'",
                        "see GET /functions for its parameters");
    }
    call.bound[static_cast<size_t>(p - def.params.begin())] = value(expr);
  }
  SeriesList out = def.impl(call);
  uint64_t values = 0;
  for (const Series& s : out) {
    values += s.values.size();
    if (s.name.size() > kMaxName) {
      throw RenderError(def.name + std::string(": a series name longer than ") +
                        std::to_string(kMaxName) + " bytes");
    }
  }
  charge_values(values);
  return Value{Value::Kind::kSeries, std::move(out), 0, false, {}, false};
}

SeriesList Evaluator::series_of(const Expr& e, const RenderContext& ctx) {
  Evaluator inner(ctx, work_);
  Value v = inner.value(e);
  count(inner.alive_);
  if (v.kind != Value::Kind::kSeries)
    throw RenderError("the first argument must be a series list, not " + py_str(v));
  return std::move(v.series);
}

// ---- the functions, in graphite-web's groups ----

// Alias
SeriesList fn_alias(Call& c) {
  auto list = c.series(0);
  std::string name = c.text(1);
  for (Series& s : list) s.name = name;
  return list;
}
SeriesList fn_alias_sub(Call& c) {
  auto list = c.series(0);
  auto re = compile_regex(c.text(1), "aliasSub");
  std::string rewrite = re2_rewrite(c.text(2), *re);
  for (Series& s : list) RE2::GlobalReplace(&s.name, *re, rewrite);
  return list;
}
SeriesList fn_alias_by_node(Call& c) {
  auto list = c.series(0);
  if (c.rest.empty()) throw RenderError("aliasByNode: no node given");
  for (Series& s : list) s.name = agg_key(s, c.rest);
  return list;
}
SeriesList fn_series_by_tag(Call&) {  // never called: the evaluator fetches it (series_by_tag)
  throw RenderError("seriesByTag takes tag expressions, not a series list: it is no callback",
                    "groupByTags(seriesList, 'sum', 'dc') aggregates with sum, sumSeries, ...");
}
SeriesList fn_alias_by_tags(Call& c) {
  return fn_alias_by_node(c);
}
// substr(start, stop) as aliasByMetric uses it: the last node of the innermost name.
std::string substr_name(const std::string& name, int64_t start, int64_t stop) {
  size_t left = name.rfind('(') == std::string::npos ? 0 : name.rfind('(') + 1;
  size_t right = name.find(')') == std::string::npos ? name.size() : name.find(')');
  std::string clean = right > left ? name.substr(left, right - left) : std::string();
  auto parts = split(clean, '.');
  auto size = static_cast<int64_t>(parts.size());
  auto clamp = [&](int64_t i) { return std::clamp(i < 0 ? i + size : i, int64_t{0}, size); };
  int64_t b = clamp(start), e = stop == 0 ? size : clamp(stop);
  std::string out;
  for (int64_t i = b; i < e; ++i) out += (i > b ? "." : "") + parts[static_cast<size_t>(i)];
  size_t comma = out.find(',');
  return comma == std::string::npos ? out : out.substr(0, comma);
}
SeriesList fn_alias_by_metric(Call& c) {
  auto list = c.series(0);
  for (Series& s : list) s.name = substr_name(s.name, -1, 0);
  return list;
}
SeriesList fn_substr(Call& c) {
  auto list = c.series(0);
  auto start = to_int(c.number(1, 0), "substr start"), stop = to_int(c.number(2, 0), "substr stop");
  for (Series& s : list) s.name = substr_name(s.name, start, stop);
  return list;
}

// Combine
SeriesList combine(Call& c, const std::string& func) {
  auto all = c.rest_series();
  return aggregate(c.ctx, pointers(all), func);
}
SeriesList fn_sum_series(Call& c) {
  return combine(c, "sum");
}
SeriesList fn_average_series(Call& c) {
  return combine(c, "average");
}
SeriesList fn_max_series(Call& c) {
  return combine(c, "max");
}
SeriesList fn_min_series(Call& c) {
  return combine(c, "min");
}
SeriesList fn_diff_series(Call& c) {
  return combine(c, "diff");
}
SeriesList fn_stddev_series(Call& c) {
  return combine(c, "stddev");
}
SeriesList fn_range_series(Call& c) {
  return combine(c, "rangeOf");
}
SeriesList fn_multiply_series(Call& c) {
  if (c.rest.size() == 1 && c.rest[0].series.size() == 1) return c.rest[0].series;
  return combine(c, "multiply");
}
SeriesList fn_aggregate(Call& c) {
  auto list = c.series(0);
  return aggregate(c.ctx, pointers(list), c.text(1), c.opt_number(2));
}
SeriesList fn_count_series(Call& c) {
  auto all = c.rest_series();
  auto n = normalize(pointers(all));
  if (!n) {
    int64_t start = c.ctx.from_s, end = c.ctx.until_s;
    int64_t step = std::max<int64_t>(1, static_cast<int64_t>((end - start) / 2.0));
    Series s = make_series("0", start, end, step, {0, 0, 0}, c.ctx.xfiles_factor);
    s.path_expression = "countSeries()";
    return {s};
  }
  std::string name = "countSeries(" + format_path_expressions(n->series) + ")";
  std::vector<double> values;
  for (const auto& row : rows_of(n->series)) values.push_back(static_cast<double>(row.size()));
  return {make_series(name, n->start, n->end, n->step, std::move(values), c.ctx.xfiles_factor)};
}
SeriesList fn_percentile_of_series(Call& c);
SeriesList with_wildcards(Call& c, const std::string& func) {
  auto list = c.series(0);
  std::vector<int64_t> positions;
  for (const Value& v : c.rest) positions.push_back(to_int(v.number, c.fn() + " position"));
  std::vector<std::string> keys;
  std::map<std::string, std::vector<Series*>> groups;
  for (Series& s : list) {
    auto parts = split(s.name, '.');
    std::string key;
    bool first = true;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (std::find(positions.begin(), positions.end(), static_cast<int64_t>(i)) != positions.end())
        continue;
      key += (first ? "" : ".") + parts[i];
      first = false;
    }
    if (!groups.count(key)) keys.push_back(key);
    groups[key].push_back(&s);
  }
  SeriesList out;
  for (const std::string& key : keys) {
    auto agg = aggregate(c.ctx, groups[key], func);
    if (agg.empty()) continue;
    agg[0].name = key;
    out.push_back(std::move(agg[0]));
  }
  return out;
}
SeriesList fn_sum_series_with_wildcards(Call& c) {
  return with_wildcards(c, "sum");
}
SeriesList fn_average_series_with_wildcards(Call& c) {
  return with_wildcards(c, "average");
}
SeriesList fn_multiply_series_with_wildcards(Call& c) {
  return with_wildcards(c, "multiply");
}
SeriesList fn_aggregate_with_wildcards(Call& c) {
  std::string func = c.text(1);
  // positions are the rest; text(1) was the function
  return with_wildcards(c, func);
}

const FunctionDef* find_function(const std::string& name);

// The series grouped by key_of (groups in the order of their first series), each group
// given to callback: a function's name (sumSeries) or aggregate()'s (sum); named by its key.
SeriesList group_by(Call& c, const std::function<std::string(const Series&)>& key_of,
                    const std::string& callback, SeriesList list) {
  std::vector<std::string> keys;
  std::map<std::string, std::vector<Series*>> groups;
  for (Series& s : list) {
    std::string key = key_of(s);
    if (!groups.count(key)) keys.push_back(key);
    groups[key].push_back(&s);
  }
  SeriesList out;
  for (const std::string& key : keys) {
    SeriesList grouped;
    if (const FunctionDef* f = find_function(callback); f != nullptr) {
      SeriesList members;
      for (Series* s : groups[key]) members.push_back(*s);
      Call inner{c.ev, c.ctx, c.expr, *f, {}, {}};
      inner.bound.resize(f->params.size());
      Value v{Value::Kind::kSeries, std::move(members), 0, false, {}, false};
      if (!f->params.empty() && f->params[0][0] == '*')
        inner.rest.push_back(std::move(v));
      else if (!f->params.empty())
        inner.bound[0] = std::move(v);
      grouped = f->impl(inner);
    } else {
      grouped = aggregate(c.ctx, groups[key], callback);
    }
    if (grouped.empty()) continue;
    grouped[0].name = key;
    out.push_back(std::move(grouped[0]));
  }
  return out;
}
SeriesList fn_group_by_node(Call& c) {
  std::vector<Value> nodes{c.arg(1)};
  return group_by(
      c, [&](const Series& s) { return agg_key(s, nodes); }, c.text(2, "average"), c.series(0));
}
SeriesList fn_group_by_nodes(Call& c) {
  return group_by(
      c, [&](const Series& s) { return agg_key(s, c.rest); }, c.text(1), c.series(0));
}
// groupByTags: the key is "<name>;tag=value;..." (the segments sorted; a series without a tag
// has "" there), where <name> is the tag name's value when grouping by it, else the name all
// series share, else the callback's name; each group's series is named, path-expressed and
// tagged by its key.
SeriesList fn_group_by_tags(Call& c) {
  auto list = c.series(0);
  const std::string callback = c.text(1);
  std::vector<std::string> tags;
  for (const Value& v : c.rest) tags.push_back(py_str(v));
  if (tags.empty()) throw RenderError("groupByTags(): no tags specified");
  const bool by_name = std::find(tags.begin(), tags.end(), "name") != tags.end();
  std::string name = callback;
  if (!by_name) {
    std::set<std::string> names;
    for (const Series& s : list) names.insert(s.tags.count("name") ? s.tags.at("name") : "");
    if (names.size() == 1) name = *names.begin();
  }
  auto key_of = [&](const Series& s) {
    std::vector<std::string> segments;
    for (const std::string& t : tags) {
      if (by_name && t == "name") continue;
      auto it = s.tags.find(t);
      segments.push_back(t + "=" + (it == s.tags.end() ? std::string() : it->second));
    }
    std::sort(segments.begin(), segments.end());
    auto own = s.tags.find("name");
    std::string key = by_name ? (own == s.tags.end() ? std::string() : own->second) : name;
    for (const std::string& segment : segments) key += ";" + segment;
    return key;
  };
  SeriesList out = group_by(c, key_of, callback, std::move(list));
  for (Series& s : out) {
    auto tags_of = parse_tagged_path(s.name);
    if (!tags_of) {
      throw RenderError("groupByTags: cannot parse the tags of '" + s.name + "'",
                        "a series without one of the tags gives it an empty value, which "
                        "Graphite refuses");
    }
    s.path_expression = s.name;
    s.tags = std::move(*tags_of);
  }
  return out;
}

SeriesList fn_divide_series(Call& c) {
  auto dividends = c.series(0);
  auto divisors = c.series(1);
  if (divisors.empty()) {
    for (Series& s : dividends) {
      s.name = "divideSeries(" + s.name + ",MISSING)";
      s.path_expression = s.name;
      std::fill(s.values.begin(), s.values.end(), kNone);
    }
    return dividends;
  }
  if (divisors.size() > 1) {
    throw RenderError("divideSeries second argument must reference exactly 1 series (got " +
                      std::to_string(divisors.size()) + ")");
  }
  SeriesList out;
  for (Series& d : dividends) {
    Series divisor = divisors[0];
    std::string name = "divideSeries(" + d.name + "," + divisor.name + ")";
    auto n = normalize({&d, &divisor});
    std::vector<double> values;
    for (const auto& row : rows_of(n->series)) {
      values.push_back(is_none(row[0]) || is_none(row[1]) || row[1] == 0 ? kNone : row[0] / row[1]);
    }
    out.push_back(
        make_series(name, n->start, n->end, n->step, std::move(values), c.ctx.xfiles_factor));
  }
  return out;
}

// asPercent with nodes: series and totals grouped by aggKey (groupByNodes' key); each series
// as a percentage of its group's total (the one total series, or the sum of several, or,
// without totals, the sum of the group); MISSING on the side a group lacks.
SeriesList as_percent_by_nodes(Call& c, SeriesList list) {
  normalize(pointers(list));
  std::vector<std::string> keys;
  std::map<std::string, std::vector<Series*>> groups;
  for (Series& s : list) {
    std::string key = agg_key(s, c.rest);
    if (!groups.count(key)) keys.push_back(key);
    groups[key].push_back(&s);
  }
  SeriesList total_list;
  std::map<std::string, std::vector<Series*>> total_groups;
  if (!c.has(1)) {
    for (const auto& [key, members] : groups) total_groups[key] = members;
  } else if (c.arg(1).kind == Value::Kind::kSeries) {
    total_list = c.series(1);
    for (Series& t : total_list) {
      std::string key = agg_key(t, c.rest);
      if (!total_groups.count(key) && !groups.count(key)) keys.push_back(key);
      total_groups[key].push_back(&t);
    }
  } else {
    throw RenderError("asPercent: total must be None or a seriesList when nodes are given");
  }
  std::map<std::string, Series> totals;  // one series or the sum of several
  for (auto& [key, members] : total_groups) {
    if (members.size() == 1) {
      totals.emplace(key, *members[0]);
      continue;
    }
    std::string name = "sumSeries(" + format_path_expressions(members) + ")";
    auto n = normalize(members);
    std::vector<double> values;
    for (const auto& row : rows_of(n->series)) values.push_back(agg_sum(row));
    totals.emplace(key, make_series(name, n->start, n->end, n->step, std::move(values),
                                    c.ctx.xfiles_factor));
  }
  auto nones = [&](const std::string& name, const Series& like) {
    return make_series(name, like.start, like.end, like.step,
                       std::vector<double>(like.read().size(), kNone), c.ctx.xfiles_factor);
  };
  SeriesList out;
  for (const std::string& key : keys) {
    auto total = totals.find(key);
    if (!groups.count(key)) {
      out.push_back(nones("asPercent(MISSING," + total->second.name + ")", total->second));
      continue;
    }
    for (Series* s : groups[key]) {
      if (total == totals.end()) {
        out.push_back(nones("asPercent(" + s->name + ",MISSING)", *s));
        continue;
      }
      Series t = total->second;
      auto m = normalize({s, &t});
      std::vector<double> values;
      for (const auto& row : rows_of(m->series)) {
        values.push_back(is_none(row[0]) || is_none(row[1]) || row[1] == 0
                             ? kNone
                             : (row[0] / row[1]) * 100.0);
      }
      out.push_back(make_series("asPercent(" + s->name + "," + t.name + ")", m->start, m->end,
                                m->step, std::move(values), c.ctx.xfiles_factor));
    }
  }
  return out;
}

SeriesList fn_as_percent(Call& c) {
  auto list = c.series(0);
  if (!c.rest.empty()) return as_percent_by_nodes(c, std::move(list));
  if (list.empty()) return {};
  auto n = normalize(pointers(list));
  std::vector<double> totals;
  std::string total_text;
  SeriesList total_list;
  bool per_series = false;
  if (!c.has(1)) {
    for (const auto& row : rows_of(n->series)) totals.push_back(agg_sum(row));
    total_text = "sumSeries(" + format_path_expressions(n->series) + ")";
  } else if (c.arg(1).kind == Value::Kind::kSeries) {
    total_list = c.series(1);
    if (total_list.size() != 1 && total_list.size() != list.size()) {
      throw RenderError(
          "asPercent second argument must be missing, a single digit, reference "
          "exactly 1 series or reference the same number of series as the first "
          "argument");
    }
    if (total_list.size() == 1) {
      totals = total_list[0].read();
      total_text = total_list[0].name;
    } else {
      per_series = true;
    }
  } else {
    double total = c.number(1);
    totals.assign(list[0].read().size(), total);
    total_text = py_str(c.arg(1));
  }
  auto percent = [](double v, double t) {
    return is_none(v) || is_none(t) || t == 0 ? kNone : (v / t) * 100.0;
  };
  SeriesList out;
  if (per_series) {
    auto by_name = [](const Series& a, const Series& b) { return a.name < b.name; };
    std::stable_sort(list.begin(), list.end(), by_name);
    std::stable_sort(total_list.begin(), total_list.end(), by_name);
    for (size_t i = 0; i < list.size(); ++i) {
      std::string name = "asPercent(" + list[i].name + "," + total_list[i].name + ")";
      auto m = normalize({&list[i], &total_list[i]});
      std::vector<double> values;
      for (const auto& row : rows_of(m->series)) values.push_back(percent(row[0], row[1]));
      out.push_back(
          make_series(name, m->start, m->end, m->step, std::move(values), c.ctx.xfiles_factor));
    }
    return out;
  }
  for (Series& s : list) {
    auto v = s.read();
    std::vector<double> values(std::max(v.size(), totals.size()), kNone);
    for (size_t i = 0; i < values.size(); ++i)
      values[i] = percent(i < v.size() ? v[i] : kNone, i < totals.size() ? totals[i] : kNone);
    std::string name =
        "asPercent(" + s.name + "," + (total_text.empty() ? s.path_expression : total_text) + ")";
    out.push_back(
        make_series(name, s.start, s.end, s.step, std::move(values), c.ctx.xfiles_factor));
  }
  return out;
}

// Transform: in place, renamed "fn(name,arg)" (path expression = the new name)
template <class F>
SeriesList map_values(Call& c, const std::string& name_suffix_fmt, F f) {
  auto list = c.series(0);
  for (Series& s : list) {
    s.name = c.fn() + "(" + s.name + name_suffix_fmt + ")";
    s.path_expression = s.name;
    for (double& v : s.values) v = f(v, s);
  }
  return list;
}
double safe_pow(double a, double b) {
  if (is_none(a) || is_none(b)) return kNone;
  double r = std::pow(a, b);
  return std::isfinite(r) ? r : kNone;
}
SeriesList fn_scale(Call& c) {
  double f = c.number(1);
  return map_values(c, "," + fmt_g(f), [f](double v, const Series&) { return v * f; });
}
SeriesList fn_offset(Call& c) {
  double f = c.number(1);
  return map_values(c, "," + fmt_g(f), [f](double v, const Series&) { return v + f; });
}
SeriesList fn_absolute(Call& c) {
  return map_values(c, "", [](double v, const Series&) { return std::fabs(v); });
}
SeriesList fn_invert(Call& c) {
  return map_values(c, "", [](double v, const Series&) { return safe_pow(v, -1); });
}
SeriesList fn_pow(Call& c) {
  double f = c.number(1);
  return map_values(c, "," + fmt_g(f), [f](double v, const Series&) { return safe_pow(v, f); });
}
SeriesList fn_square_root(Call& c) {
  return map_values(c, "", [](double v, const Series&) { return safe_pow(v, 0.5); });
}
SeriesList fn_scale_to_seconds(Call& c) {
  double seconds = c.number(1);
  return map_values(c, "," + std::to_string(to_int(seconds, "scaleToSeconds seconds")),
                    [seconds](double v, const Series& s) {
                      return is_none(v) ? v
                                        : py_round6(v * (seconds / static_cast<double>(s.step)));
                    });
}
SeriesList fn_remove_above_value(Call& c) {
  double n = c.number(1);
  auto list = c.series(0);
  for (Series& s : list) {
    s.name = "removeAboveValue(" + s.name + ", " + fmt_g(n) + ")";
    s.path_expression = s.name;
    for (double& v : s.values)
      if (!is_none(v) && v > n) v = kNone;
  }
  return list;
}
SeriesList fn_remove_below_value(Call& c) {
  double n = c.number(1);
  auto list = c.series(0);
  for (Series& s : list) {
    s.name = "removeBelowValue(" + s.name + ", " + fmt_g(n) + ")";
    s.path_expression = s.name;
    for (double& v : s.values)
      if (is_none(v) || v < n) v = kNone;
  }
  return list;
}
SeriesList fn_changed(Call& c) {
  auto list = c.series(0);
  for (Series& s : list) {
    s.name = "changed(" + s.name + ")";
    s.path_expression = s.name;
    double previous = kNone;
    for (double& v : s.values) {
      if (is_none(previous)) {
        previous = v;
        v = 0;
      } else if (!is_none(v) && previous != v) {
        previous = v;
        v = 1;
      } else {
        v = 0;
      }
    }
  }
  return list;
}
SeriesList fn_transform_null(Call& c) {
  auto list = c.series(0);
  double def = c.number(1, 0);
  std::vector<double> defaults;
  bool reference = c.has(2);
  if (reference) {
    auto refs = c.series(2);
    auto rows = rows_of(pointers(refs));
    for (const auto& row : rows)
      defaults.push_back(
          std::any_of(row.begin(), row.end(), [](double v) { return !is_none(v); }) ? def : kNone);
  }
  for (Series& s : list) {
    s.name =
        "transformNull(" + s.name + "," + fmt_g(def) + (reference ? ",referenceSeries" : "") + ")";
    s.path_expression = s.name;
    std::vector<double> v = s.read();
    size_t n = reference && !defaults.empty() ? std::max(v.size(), defaults.size()) : v.size();
    std::vector<double> out(n);
    for (size_t i = 0; i < n; ++i) {
      double x = i < v.size() ? v[i] : kNone;
      double d = reference && !defaults.empty() ? (i < defaults.size() ? defaults[i] : kNone) : def;
      out[i] = is_none(x) ? d : x;
    }
    s.values = std::move(out);
    s.values_per_point = 1;
  }
  return list;
}
SeriesList fn_keep_last_value(Call& c) {
  auto list = c.series(0);
  double limit = c.number(1, HUGE_VAL);
  for (Series& s : list) {
    s.name = "keepLastValue(" + s.name + ")";
    s.path_expression = s.name;
    size_t nones = 0;
    double last = kNone;
    for (size_t i = 0; i < s.values.size(); ++i) {
      if (is_none(s.values[i])) {
        ++nones;
        continue;
      }
      if (nones > 0 && static_cast<double>(nones) <= limit && !is_none(last))
        for (size_t j = i - nones; j < i; ++j) s.values[j] = last;
      nones = 0;
      last = s.values[i];
    }
    if (nones > 0 && static_cast<double>(nones) <= limit && !is_none(last))
      for (size_t j = s.values.size() - nones; j < s.values.size(); ++j) s.values[j] = last;
  }
  return list;
}

// Transform: new series from the values read (series.copy)
std::optional<double> opt(const Call& c, size_t i) {
  return c.opt_number(i);
}
// _nonNegativeDelta: (delta, the new previous)
std::pair<double, double> non_negative_delta(double val, double prev, std::optional<double> max,
                                             std::optional<double> min) {
  if (max && !is_none(val) && val > *max) return {kNone, kNone};
  if (min && !is_none(val) && val < *min) return {kNone, kNone};
  if (is_none(prev) || is_none(val)) return {kNone, val};
  if (val >= prev) return {val - prev, val};
  if (max) return {*max + 1 + val - prev - min.value_or(0), val};
  if (min) return {val - *min, val};
  return {kNone, val};
}
SeriesList fn_non_negative_derivative(Call& c) {
  auto list = c.series(0);
  auto max = opt(c, 1), min = opt(c, 2);
  SeriesList out;
  for (const Series& s : list) {
    std::vector<double> values;
    double prev = kNone;
    for (double v : s.read()) {
      auto [delta, next] = non_negative_delta(v, prev, max, min);
      prev = next;
      values.push_back(delta);
    }
    out.push_back(copy_series(s, "nonNegativeDerivative(" + s.name + ")", std::move(values)));
  }
  return out;
}
SeriesList fn_per_second(Call& c) {
  auto list = c.series(0);
  auto max = opt(c, 1), min = opt(c, 2);
  SeriesList out;
  for (const Series& s : list) {
    std::vector<double> values;
    double prev = kNone;
    for (double v : s.read()) {
      auto [delta, next] = non_negative_delta(v, prev, max, min);
      prev = next;
      values.push_back(is_none(delta) ? kNone : py_round6(delta / static_cast<double>(s.step)));
    }
    out.push_back(copy_series(s, "perSecond(" + s.name + ")", std::move(values)));
  }
  return out;
}
SeriesList fn_derivative(Call& c) {
  auto list = c.series(0);
  SeriesList out;
  for (const Series& s : list) {
    std::vector<double> values;
    double prev = kNone;
    for (double v : s.read()) {
      values.push_back(is_none(prev) || is_none(v) ? kNone : v - prev);
      prev = v;
    }
    out.push_back(copy_series(s, "derivative(" + s.name + ")", std::move(values)));
  }
  return out;
}
SeriesList fn_integral(Call& c) {
  auto list = c.series(0);
  SeriesList out;
  for (const Series& s : list) {
    std::vector<double> values;
    double current = 0;
    for (double v : s.read()) {
      if (is_none(v)) {
        values.push_back(kNone);
      } else {
        current += v;
        values.push_back(current);
      }
    }
    out.push_back(copy_series(s, "integral(" + s.name + ")", std::move(values)));
  }
  return out;
}
SeriesList fn_logarithm(Call& c) {
  auto list = c.series(0);
  double base = c.number(1, 10);
  std::string base_text = c.has(1) ? py_str(c.arg(1)) : "10";
  SeriesList out;
  for (const Series& s : list) {
    std::vector<double> values;
    for (double v : s.read())
      values.push_back(is_none(v) || v <= 0 ? kNone : std::log(v) / std::log(base));
    out.push_back(copy_series(s, "log(" + s.name + ", " + base_text + ")", std::move(values)));
  }
  return out;
}
SeriesList fn_delay(Call& c) {
  auto list = c.series(0);
  auto steps = to_int(c.number(1), "delay steps");
  SeriesList out;
  for (const Series& s : list) {
    const auto& v = s.values;
    auto n = static_cast<int64_t>(v.size());
    std::vector<double> values;
    if (steps < 0) {
      for (int64_t i = std::min(-steps, n); i < n; ++i) values.push_back(v[static_cast<size_t>(i)]);
      values.insert(values.end(), static_cast<size_t>(std::min(-steps, n)), kNone);
    } else {
      values.assign(static_cast<size_t>(std::min(steps, n)), kNone);
      // series[:-steps]: all of it for 0 steps... and none ([:-0] is empty) in Python
      int64_t keep = steps == 0 ? 0 : std::max<int64_t>(0, n - steps);
      for (int64_t i = 0; i < keep; ++i) values.push_back(v[static_cast<size_t>(i)]);
    }
    out.push_back(
        copy_series(s, "delay(" + s.name + "," + std::to_string(steps) + ")", std::move(values)));
  }
  return out;
}

// movingWindow: the window before each point, over data fetched from further back.
SeriesList moving(Call& c, const std::string& func, size_t xff_index = 2) {
  auto list = c.series(0);
  if (list.empty()) return {};
  const Value& window = c.arg(1);
  int64_t preview = 0;
  bool by_time = window.kind == Value::Kind::kString;
  if (by_time) {
    auto offset = parse_time_offset(window.text);
    if (!offset) throw RenderError(c.fn() + ": " + offset.error().message, offset.error().hint);
    preview = std::llabs(*offset);
  } else if (window.kind == Value::Kind::kNumber) {
    int64_t max_step = 0;
    for (const Series& s : list) max_step = std::max(max_step, s.step);
    preview = max_step * to_int(window.number, c.fn() + " windowSize");
  } else {
    throw RenderError(c.fn() + ": windowSize must be a number of points or a time like '5min'");
  }
  if (preview < 0) throw RenderError(c.fn() + ": windowSize must not be negative");
  if (preview > kMaxOffset) throw RenderError(c.fn() + ": windowSize is longer than 100 years");
  AggFn agg = agg_function(func);
  auto xff = c.opt_number(xff_index);
  SeriesList out;
  std::string tag =
      "moving" + std::string(1, static_cast<char>(std::toupper(func[0]))) + func.substr(1);
  for (Series& s : c.first_again(c.ctx.from_s - preview, c.ctx.until_s)) {
    size_t points =
        by_time ? static_cast<size_t>(preview / s.step) : static_cast<size_t>(window.number);
    std::string name = by_time ? tag + "(" + s.name + ",\"" + window.text + "\")"
                               : tag + "(" + s.name + "," + py_str(window) + ")";
    const double factor = xff.value_or(s.xfiles_factor);
    std::vector<double> values;
    for (size_t i = points; i < s.values.size(); ++i) {
      std::vector<double> win(s.values.begin() + static_cast<ptrdiff_t>(i - points),
                              s.values.begin() + static_cast<ptrdiff_t>(i));
      auto nn = non_null(win);
      values.push_back(!nn.empty() && xff_ok(nn.size(), points, factor) ? agg(nn) : kNone);
    }
    Series moved = copy_series(s, name, std::move(values));
    moved.start = s.start + preview;
    out.push_back(std::move(moved));
  }
  return out;
}
SeriesList fn_moving_average(Call& c) {
  return moving(c, "average");
}
SeriesList fn_moving_sum(Call& c) {
  return moving(c, "sum");
}
SeriesList fn_moving_min(Call& c) {
  return moving(c, "min");
}
SeriesList fn_moving_max(Call& c) {
  return moving(c, "max");
}
SeriesList fn_moving_median(Call& c) {
  return moving(c, "median");
}
SeriesList fn_moving_window(Call& c) {
  return moving(c, c.text(2, "average"), 3);
}

SeriesList fn_time_shift(Call& c) {
  auto list = c.series(0);
  std::string shift = c.text(1);
  if (!shift.empty() && std::isdigit(static_cast<unsigned char>(shift[0]))) shift = "-" + shift;
  auto delta = parse_time_offset(shift);
  if (!delta) throw RenderError("timeShift: " + delta.error().message, delta.error().hint);
  if (std::llabs(*delta) > kMaxOffset) throw RenderError("timeShift: more than 100 years");
  bool reset_end = c.flag(2, true);
  if (list.empty()) return {};
  const Series& first = list[0];
  SeriesList out;
  for (Series& s : c.first_again(c.ctx.from_s + *delta, c.ctx.until_s + *delta)) {
    s.name = "timeShift(" + s.name + ", \"" + shift + "\")";
    s.end = reset_end ? first.end : s.end - s.start + first.start;
    s.start = first.start;
    out.push_back(std::move(s));
  }
  return out;
}

// The interval string argument i (summarize, hitcount) in seconds, > 0.
int64_t positive_interval(const Call& c, size_t i) {
  std::string text = c.text(i);
  auto interval = parse_time_offset(text);
  if (!interval || *interval <= 0)
    throw RenderError(c.fn() + ": '" + text + "' is not a positive interval");
  return *interval;
}

SeriesList fn_summarize(Call& c) {
  auto list = c.series(0);
  std::string interval_text = c.text(1);
  const int64_t iv = positive_interval(c, 1);
  std::string func = c.text(2, "sum");
  AggFn agg = agg_function(func);
  bool align_to_from = c.flag(3, false);
  SeriesList out;
  for (const Series& s : list) {
    int64_t new_start = align_to_from ? s.start : s.start - s.start % iv;
    int64_t new_end = align_to_from ? s.end : s.end - s.end % iv + iv;
    c.charge_values(static_cast<uint64_t>((new_end - new_start) / iv + 1));
    std::vector<double> points = s.read();
    std::vector<int64_t> stamps;
    for (int64_t t = s.start; t < s.end; t += s.step) stamps.push_back(t);
    const size_t n = std::min(stamps.size(), points.size());
    const double interval_points = static_cast<double>(iv) / static_cast<double>(s.step);
    std::vector<double> values;
    size_t i = 0;
    int64_t t = new_start;
    while (t < new_end) {
      size_t first = i, nn = 0;
      while (i < n && stamps[i] < t + iv) {
        if (stamps[i] <= t) first = i;
        if (stamps[i] >= t && !is_none(points[i])) ++nn;
        ++i;
      }
      bool ok = nn > 0 && static_cast<double>(nn) / interval_points >= s.xfiles_factor;
      values.push_back(ok ? agg(std::vector<double>(points.begin() + static_cast<ptrdiff_t>(first),
                                                    points.begin() + static_cast<ptrdiff_t>(i)))
                          : kNone);
      t += iv;
    }
    if (align_to_from) new_end = t;
    std::string name = "summarize(" + s.name + ", \"" + interval_text + "\", \"" + func + "\"" +
                       (align_to_from ? ", true" : "") + ")";
    Series r = copy_series(s, name, std::move(values));
    r.start = new_start;
    r.end = new_end;
    r.step = iv;
    out.push_back(std::move(r));
  }
  return out;
}

SeriesList fn_hitcount(Call& c) {
  auto list = c.series(0);
  std::string interval_text = c.text(1);
  const int64_t iv = positive_interval(c, 1);
  if (c.flag(2, false)) throw RenderError("hitcount: alignToInterval is not supported yet");
  SeriesList out;
  for (const Series& s : list) {
    auto bucket_count = static_cast<int64_t>(
        std::ceil(static_cast<double>(s.end - s.start) / static_cast<double>(iv)));
    c.charge_values(static_cast<uint64_t>(std::max<int64_t>(0, bucket_count)));
    std::vector<std::vector<double>> buckets(
        static_cast<size_t>(std::max<int64_t>(0, bucket_count)));
    int64_t new_start = s.end - bucket_count * iv;
    auto floordiv = [](int64_t a, int64_t b) {
      int64_t q = a / b;
      return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
    };
    std::vector<double> v = s.read();
    for (size_t i = 0; i < v.size(); ++i) {
      if (is_none(v[i])) continue;
      int64_t start_time = s.start + static_cast<int64_t>(i) * s.step;
      int64_t sb = floordiv(start_time - new_start, iv), sm = start_time - new_start - sb * iv;
      int64_t end_time = start_time + s.step;
      int64_t eb = floordiv(end_time - new_start, iv), em = end_time - new_start - eb * iv;
      if (eb >= bucket_count) {
        eb = bucket_count - 1;
        em = iv;
      }
      if (sb == eb) {
        if (sb >= 0)
          buckets[static_cast<size_t>(sb)].push_back(v[i] * static_cast<double>(em - sm));
      } else {
        if (sb >= 0)
          buckets[static_cast<size_t>(sb)].push_back(v[i] * static_cast<double>(iv - sm));
        for (int64_t j = sb + 1; j < eb; ++j)
          buckets[static_cast<size_t>(j)].push_back(v[i] * static_cast<double>(iv));
        if (em > 0) buckets[static_cast<size_t>(eb)].push_back(v[i] * static_cast<double>(em));
      }
    }
    std::vector<double> values;
    for (const auto& b : buckets) values.push_back(b.empty() ? kNone : py_sum(b));
    Series r =
        copy_series(s, "hitcount(" + s.name + ", \"" + interval_text + "\")", std::move(values));
    r.start = new_start;
    r.step = iv;
    out.push_back(std::move(r));
  }
  return out;
}

SeriesList fn_consolidate_by(Call& c) {
  auto list = c.series(0);
  std::string func = c.text(1);
  static const std::vector<std::string> kOk = {"sum", "average", "avg",   "avg_zero",
                                               "min", "max",     "first", "last"};
  if (std::find(kOk.begin(), kOk.end(), func) == kOk.end()) {
    throw RenderError("consolidateBy: '" + func +
                      "' is not one of sum, average, avg, avg_zero, "
                      "min, max, first, last");
  }
  for (Series& s : list) {
    s.consolidation = func;
    s.name = "consolidateBy(" + s.name + ",\"" + func + "\")";
    s.path_expression = s.name;
  }
  return list;
}

SeriesList fn_n_percentile(Call& c) {
  auto list = c.series(0);
  double n = c.number(1);
  if (!(n > 0 && n <= 100)) throw RenderError("nPercentile: n must be in (0, 100]");
  SeriesList out;
  for (const Series& s : list) {
    auto sorted = non_null(s.read());
    if (sorted.empty()) continue;
    std::sort(sorted.begin(), sorted.end());
    double rank_f = n / 100.0 * static_cast<double>(sorted.size() + 1);
    auto rank = static_cast<int64_t>(rank_f);
    rank += static_cast<int64_t>(std::ceil(rank_f - static_cast<double>(rank)));
    double p;
    if (rank == 0)
      p = sorted[0];
    else if (rank - 1 == static_cast<int64_t>(sorted.size()))
      p = sorted.back();
    else if (rank - 1 > static_cast<int64_t>(sorted.size()))
      p = sorted.back();
    else
      p = sorted[static_cast<size_t>(rank - 1)];
    auto count =
        static_cast<size_t>(static_cast<double>(s.end - s.start) / static_cast<double>(s.step));
    c.charge_values(count);
    out.push_back(copy_series(s, "nPercentile(" + s.name + ", " + fmt_g(n) + ")",
                              std::vector<double>(count, p)));
  }
  return out;
}

// Filter and sort
double series_agg(const Series& s, AggFn f) {
  double v = f(s.read());
  return is_none(v) ? -HUGE_VAL : v;
}
SeriesList top(Call& c, const std::string& func, bool highest, size_t n_index) {
  auto list = c.series(0);
  AggFn f = agg_function(func);
  auto n = to_int(c.number(n_index, 1), c.fn() + " n");
  std::vector<std::pair<double, size_t>> keyed;
  for (size_t i = 0; i < list.size(); ++i) keyed.emplace_back(series_agg(list[i], f), i);
  std::stable_sort(keyed.begin(), keyed.end(), [highest](const auto& a, const auto& b) {
    return highest ? a.first > b.first : a.first < b.first;
  });
  SeriesList out;
  for (size_t i = 0; i < keyed.size() && static_cast<int64_t>(i) < n; ++i)
    out.push_back(std::move(list[keyed[i].second]));
  return out;
}
SeriesList fn_highest(Call& c) {
  return top(c, c.text(2, "average"), true, 1);
}
SeriesList fn_lowest(Call& c) {
  return top(c, c.text(2, "average"), false, 1);
}
SeriesList fn_highest_current(Call& c) {
  return top(c, "current", true, 1);
}
SeriesList fn_highest_max(Call& c) {
  return top(c, "max", true, 1);
}
SeriesList fn_highest_average(Call& c) {
  return top(c, "average", true, 1);
}
SeriesList fn_lowest_current(Call& c) {
  return top(c, "current", false, 1);
}
SeriesList fn_lowest_average(Call& c) {
  return top(c, "average", false, 1);
}

SeriesList filter(Call& c, const std::string& func, const std::string& op) {
  auto list = c.series(0);
  double threshold = c.number(1);
  AggFn f = agg_function(func);
  SeriesList out;
  for (Series& s : list) {
    double v = f(s.read());
    bool keep = op == ">"    ? !is_none(v) && v > threshold
                : op == ">=" ? !is_none(v) && v >= threshold
                : op == "="  ? !is_none(v) && v == threshold
                : op == "!=" ? is_none(v) || v != threshold
                : op == "<"  ? is_none(v) || v < threshold
                             : is_none(v) || v <= threshold;
    if (keep) out.push_back(std::move(s));
  }
  return out;
}
SeriesList fn_current_above(Call& c) {
  return filter(c, "last", ">");
}
SeriesList fn_current_below(Call& c) {
  return filter(c, "last", "<=");
}
SeriesList fn_average_above(Call& c) {
  return filter(c, "average", ">");
}
SeriesList fn_average_below(Call& c) {
  return filter(c, "average", "<=");
}
SeriesList fn_maximum_above(Call& c) {
  return filter(c, "max", ">");
}
SeriesList fn_maximum_below(Call& c) {
  return filter(c, "max", "<=");
}
SeriesList fn_minimum_above(Call& c) {
  return filter(c, "min", ">");
}
SeriesList fn_minimum_below(Call& c) {
  return filter(c, "min", "<=");
}
SeriesList fn_filter_series(Call& c) {
  c.number(3);  // the threshold, named in the error when missing
  Call inner = c;
  inner.bound = {c.bound[0], c.bound[3]};
  std::string func = c.text(1), op = c.text(2);
  static const std::vector<std::string> kOps = {"=", "!=", ">", ">=", "<", "<="};
  if (std::find(kOps.begin(), kOps.end(), op) == kOps.end())
    throw RenderError("filterSeries: unsupported operator: " + op);
  return filter(inner, func, op);
}

SeriesList fn_limit(Call& c) {
  auto list = c.series(0);
  auto n = to_int(c.number(1), "limit n");
  if (n < 0) n = std::max<int64_t>(0, static_cast<int64_t>(list.size()) + n);
  if (static_cast<size_t>(n) < list.size()) list.resize(static_cast<size_t>(n));
  return list;
}
std::string natural_key(const std::string& name) {
  std::string out;
  for (size_t i = 0; i < name.size();) {
    if (std::isdigit(static_cast<unsigned char>(name[i]))) {
      size_t j = i;
      while (j < name.size() && std::isdigit(static_cast<unsigned char>(name[j]))) ++j;
      std::string digits = name.substr(i, j - i);
      size_t nz = digits.find_first_not_of('0');
      digits = nz == std::string::npos ? "0" : digits.substr(nz);
      out += std::string(digits.size() < 10 ? 10 - digits.size() : 0, '0') + digits;
      i = j;
    } else {
      out += name[i++];
    }
  }
  return out;
}
SeriesList fn_sort_by_name(Call& c) {
  auto list = c.series(0);
  bool natural = c.flag(1, false), reverse = c.flag(2, false);
  auto key = [natural](const Series& s) { return natural ? natural_key(s.name) : s.name; };
  std::stable_sort(list.begin(), list.end(), [&](const Series& a, const Series& b) {
    return reverse ? key(a) > key(b) : key(a) < key(b);
  });
  return list;
}
SeriesList sort_by(Call& c, AggFn f, bool reverse) {
  auto list = c.series(0);
  std::vector<std::pair<double, size_t>> keyed;
  for (size_t i = 0; i < list.size(); ++i) keyed.emplace_back(series_agg(list[i], f), i);
  std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& a, const auto& b) {
    return reverse ? a.first > b.first : a.first < b.first;
  });
  SeriesList out;
  for (const auto& k : keyed) out.push_back(std::move(list[k.second]));
  return out;
}
SeriesList fn_sort_by_maxima(Call& c) {
  return sort_by(c, agg_max, true);
}
SeriesList fn_sort_by_total(Call& c) {
  return sort_by(c, agg_sum, true);
}
SeriesList fn_sort_by(Call& c) {
  return sort_by(c, agg_function(c.text(1, "average")), c.flag(2, false));
}
SeriesList fn_sort_by_minima(Call& c) {
  auto list = c.series(0);
  SeriesList kept;
  for (Series& s : list) {
    double m = agg_max(s.read());
    if ((is_none(m) ? 0 : m) > 0) kept.push_back(std::move(s));
  }
  std::vector<std::pair<double, size_t>> keyed;
  for (size_t i = 0; i < kept.size(); ++i) keyed.emplace_back(series_agg(kept[i], agg_min), i);
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  SeriesList out;
  for (const auto& k : keyed) out.push_back(std::move(kept[k.second]));
  return out;
}
SeriesList regex_filter(Call& c, bool keep_matching) {
  auto list = c.series(0);
  auto re = compile_regex(c.text(1), c.fn());
  SeriesList out;
  for (Series& s : list)
    if (RE2::PartialMatch(s.name, *re) == keep_matching) out.push_back(std::move(s));
  return out;
}
SeriesList fn_exclude(Call& c) {
  return regex_filter(c, false);
}
SeriesList fn_grep(Call& c) {
  return regex_filter(c, true);
}

// Special
SeriesList constant_line(Call& c, const Value& value) {
  if (value.kind != Value::Kind::kNumber)
    throw RenderError(c.fn() + ": the value must be a number");
  int64_t start = c.ctx.from_s, end = c.ctx.until_s;
  auto step = static_cast<int64_t>(static_cast<double>(end - start) / 2.0);
  if (step <= 0) step = 1;
  // graphite-web takes the value as a float: constantLine(5) is named "5.0"
  Series s = make_series(py_repr(value.number), start, end, step,
                         {value.number, value.number, value.number}, c.ctx.xfiles_factor);
  s.path_expression = "constantLine(" + py_repr(value.number) + ")";
  return {s};
}
SeriesList fn_constant_line(Call& c) {
  return constant_line(c, c.arg(0));
}
SeriesList fn_threshold(Call& c) {
  auto list = constant_line(c, c.arg(0));
  if (c.has(1)) list[0].name = c.text(1);
  return list;
}
// Presentation: the series unchanged (statherd draws no images), or renamed as graphite-web
// renames them.
SeriesList fn_keep(Call& c) {
  return c.series(0);
}
SeriesList fn_second_y_axis(Call& c) {
  auto list = c.series(0);
  for (Series& s : list) s.name = "secondYAxis(" + s.name + ")";
  return list;
}
SeriesList fn_dashed(Call& c) {
  auto list = c.series(0);
  double len = c.number(1, 5);
  for (Series& s : list) s.name = "dashed(" + s.name + ", " + fmt_g(len) + ")";
  return list;
}

SeriesList fn_draw_as_infinite(Call& c) {
  auto list = c.series(0);
  for (Series& s : list) s.name = "drawAsInfinite(" + s.name + ")";
  return list;
}
SeriesList fn_add(Call& c) {
  double k = c.number(1);
  // graphite-web names it with %d (the constant truncated), adds the constant itself
  return map_values(c, "," + std::to_string(to_int(k, "add constant")),
                    [k](double v, const Series&) { return v + k; });
}
SeriesList fn_exp(Call& c) {
  return map_values(c, "", [](double v, const Series&) {
    double r = std::exp(v);
    return std::isfinite(r) ? r : kNone;
  });
}
SeriesList fn_is_non_null(Call& c) {
  auto list = c.series(0);
  for (Series& s : list) {
    s.name = "isNonNull(" + s.name + ")";
    s.path_expression = s.name;
    s.values = s.read();
    s.values_per_point = 1;
    for (double& v : s.values) v = is_none(v) ? 0 : 1;
  }
  return list;
}
SeriesList fn_offset_to_zero(Call& c) {
  auto list = c.series(0);
  for (Series& s : list) {
    double minimum = agg_min(s.values);
    s.name = "offsetToZero(" + s.name + ")";
    s.path_expression = s.name;
    for (double& v : s.values)
      if (!is_none(v)) v = v - minimum;
  }
  return list;
}
SeriesList fn_cumulative(Call& c) {
  auto list = c.series(0);
  for (Series& s : list) {
    s.consolidation = "sum";
    s.name = "consolidateBy(" + s.name + ",\"sum\")";
    s.path_expression = s.name;
  }
  return list;
}
SeriesList fn_remove_empty_series(Call& c) {
  auto list = c.series(0);
  double xff = c.number(1, 0);
  SeriesList out;
  for (Series& s : list)
    if (xff_row(s.read(), xff)) out.push_back(std::move(s));
  return out;
}
SeriesList fn_identity(Call& c) {
  std::string name = c.text(0);
  int64_t start = c.ctx.from_s, end = c.ctx.until_s;
  c.charge_values(static_cast<uint64_t>((end - start) / 60 + 1));  // before making them
  std::vector<double> values;
  for (int64_t t = start; t < end; t += 60) values.push_back(static_cast<double>(t));
  Series s = make_series(name, start, end, 60, std::move(values), c.ctx.xfiles_factor);
  s.path_expression = "identity(\"" + name + "\")";
  return {s};
}
// nPercentile's value (not interpolated) of the series' non-null values; NaN when none.
double series_percentile(const std::vector<double>& values, double n) {
  auto sorted = non_null(values);
  if (sorted.empty()) return kNone;
  std::sort(sorted.begin(), sorted.end());
  double rank_f = n / 100.0 * static_cast<double>(sorted.size() + 1);
  auto rank = static_cast<int64_t>(rank_f);
  rank += static_cast<int64_t>(std::ceil(rank_f - static_cast<double>(rank)));
  auto size = static_cast<int64_t>(sorted.size());
  if (rank <= 0) return sorted[0];
  if (rank - 1 >= size) return sorted.back();
  return sorted[static_cast<size_t>(rank - 1)];
}
SeriesList remove_percentile(Call& c, bool above) {
  auto list = c.series(0);
  double n = c.number(1);
  if (!(n > 0 && n <= 100)) throw RenderError(c.fn() + ": n must be in (0, 100]");
  for (Series& s : list) {
    s.name = c.fn() + "(" + s.name + ", " + fmt_g(n) + ")";
    s.path_expression = s.name;
    double p = series_percentile(s.read(), n);
    if (is_none(p)) continue;
    for (double& v : s.values) {
      if (above ? (!is_none(v) && v > p) : (is_none(v) || v < p)) v = kNone;
    }
  }
  return list;
}
SeriesList fn_remove_above_percentile(Call& c) {
  return remove_percentile(c, true);
}
SeriesList fn_remove_below_percentile(Call& c) {
  return remove_percentile(c, false);
}

SeriesList fn_percentile_of_series(Call& c) {
  auto list = c.series(0);
  double n = c.number(1);
  bool interpolate = c.flag(2, false);
  if (!(n > 0 && n <= 100)) throw RenderError("percentileOfSeries: n must be in (0, 100]");
  if (list.empty()) return {};
  auto norm = normalize(pointers(list));
  std::string name = "percentileOfSeries(" + list[0].path_expression + "," + fmt_g(n) + ")";
  std::vector<double> values;
  for (const auto& row : rows_of(norm->series)) {
    auto sorted = non_null(row);
    if (sorted.empty()) {
      values.push_back(kNone);
      continue;
    }
    std::sort(sorted.begin(), sorted.end());
    double rank_f = n / 100.0 * static_cast<double>(sorted.size() + 1);
    auto rank = static_cast<int64_t>(rank_f);
    double frac = rank_f - static_cast<double>(rank);
    if (!interpolate) rank += static_cast<int64_t>(std::ceil(frac));
    auto size = static_cast<int64_t>(sorted.size());
    double p = rank == 0          ? sorted[0]
               : rank - 1 >= size ? sorted.back()
                                  : sorted[static_cast<size_t>(rank - 1)];
    if (interpolate && rank != size && rank < size)
      p = p + frac * (sorted[static_cast<size_t>(rank)] - p);
    values.push_back(p);
  }
  return {make_series(name, norm->start, norm->end, norm->step, std::move(values),
                      c.ctx.xfiles_factor)};
}

const std::vector<FunctionDef>& definitions() {
  static const std::vector<FunctionDef> kDefs = {
      {"absolute", "Transform", {"seriesList"}, fn_absolute},
      {"add", "Transform", {"seriesList", "constant"}, fn_add},
      {"cumulative", "Special", {"seriesList"}, fn_cumulative},
      {"exp", "Transform", {"seriesList"}, fn_exp},
      {"identity", "Calculate", {"name"}, fn_identity},
      {"isNonNull", "Transform", {"seriesList"}, fn_is_non_null},
      {"offsetToZero", "Transform", {"seriesList"}, fn_offset_to_zero},
      {"removeAbovePercentile", "Filter Data", {"seriesList", "n"}, fn_remove_above_percentile},
      {"removeBelowPercentile", "Filter Data", {"seriesList", "n"}, fn_remove_below_percentile},
      {"removeEmptySeries",
       "Filter Series",
       {"seriesList", "xFilesFactor"},
       fn_remove_empty_series},
      {"aggregate", "Combine", {"seriesList", "func", "xFilesFactor"}, fn_aggregate},
      {"aggregateWithWildcards",
       "Combine",
       {"seriesList", "func", "*positions"},
       fn_aggregate_with_wildcards},
      {"alias", "Alias", {"seriesList", "newName"}, fn_alias},
      {"aliasByMetric", "Alias", {"seriesList"}, fn_alias_by_metric},
      {"aliasByNode", "Alias", {"seriesList", "*nodes"}, fn_alias_by_node},
      {"aliasByTags", "Alias", {"seriesList", "*tags"}, fn_alias_by_tags},
      {"groupByTags", "Combine", {"seriesList", "callback", "*tags"}, fn_group_by_tags},
      {"seriesByTag", "Special", {"*tagExpressions"}, fn_series_by_tag},
      {"aliasSub", "Alias", {"seriesList", "search", "replace"}, fn_alias_sub},
      {"alpha", "Graph", {"seriesList", "alpha"}, fn_keep},
      {"asPercent", "Calculate", {"seriesList", "total", "*nodes"}, fn_as_percent},
      {"averageAbove", "Filter Series", {"seriesList", "n"}, fn_average_above},
      {"averageBelow", "Filter Series", {"seriesList", "n"}, fn_average_below},
      {"averageSeries", "Combine", {"*seriesLists"}, fn_average_series},
      {"averageSeriesWithWildcards",
       "Combine",
       {"seriesList", "*position"},
       fn_average_series_with_wildcards},
      {"avg", "Combine", {"*seriesLists"}, fn_average_series},
      {"changed", "Special", {"seriesList"}, fn_changed},
      {"color", "Graph", {"seriesList", "theColor"}, fn_keep},
      {"consolidateBy", "Special", {"seriesList", "consolidationFunc"}, fn_consolidate_by},
      {"constantLine", "Special", {"value"}, fn_constant_line},
      {"countSeries", "Combine", {"*seriesLists"}, fn_count_series},
      {"currentAbove", "Filter Series", {"seriesList", "n"}, fn_current_above},
      {"currentBelow", "Filter Series", {"seriesList", "n"}, fn_current_below},
      {"dashed", "Graph", {"seriesList", "dashLength"}, fn_dashed},
      {"delay", "Transform", {"seriesList", "steps"}, fn_delay},
      {"derivative", "Transform", {"seriesList"}, fn_derivative},
      {"diffSeries", "Combine", {"*seriesLists"}, fn_diff_series},
      {"divideSeries", "Combine", {"dividendSeriesList", "divisorSeries"}, fn_divide_series},
      {"drawAsInfinite", "Graph", {"seriesList"}, fn_draw_as_infinite},
      {"exclude", "Filter Series", {"seriesList", "pattern"}, fn_exclude},
      {"filterSeries",
       "Filter Series",
       {"seriesList", "func", "operator", "threshold"},
       fn_filter_series},
      {"grep", "Filter Series", {"seriesList", "pattern"}, fn_grep},
      {"groupByNode", "Combine", {"seriesList", "nodeNum", "callback"}, fn_group_by_node},
      {"groupByNodes", "Combine", {"seriesList", "callback", "*nodes"}, fn_group_by_nodes},
      {"highest", "Filter Series", {"seriesList", "n", "func"}, fn_highest},
      {"highestAverage", "Filter Series", {"seriesList", "n"}, fn_highest_average},
      {"highestCurrent", "Filter Series", {"seriesList", "n"}, fn_highest_current},
      {"highestMax", "Filter Series", {"seriesList", "n"}, fn_highest_max},
      {"hitcount", "Transform", {"seriesList", "intervalString", "alignToInterval"}, fn_hitcount},
      {"integral", "Transform", {"seriesList"}, fn_integral},
      {"invert", "Transform", {"seriesList"}, fn_invert},
      {"keepLastValue", "Transform", {"seriesList", "limit"}, fn_keep_last_value},
      {"limit", "Filter Series", {"seriesList", "n"}, fn_limit},
      {"lineWidth", "Graph", {"seriesList", "width"}, fn_keep},
      {"log", "Transform", {"seriesList", "base"}, fn_logarithm},
      {"lowest", "Filter Series", {"seriesList", "n", "func"}, fn_lowest},
      {"lowestAverage", "Filter Series", {"seriesList", "n"}, fn_lowest_average},
      {"lowestCurrent", "Filter Series", {"seriesList", "n"}, fn_lowest_current},
      {"maxSeries", "Combine", {"*seriesLists"}, fn_max_series},
      {"maximumAbove", "Filter Series", {"seriesList", "n"}, fn_maximum_above},
      {"maximumBelow", "Filter Series", {"seriesList", "n"}, fn_maximum_below},
      {"minSeries", "Combine", {"*seriesLists"}, fn_min_series},
      {"minimumAbove", "Filter Series", {"seriesList", "n"}, fn_minimum_above},
      {"minimumBelow", "Filter Series", {"seriesList", "n"}, fn_minimum_below},
      {"movingAverage",
       "Calculate",
       {"seriesList", "windowSize", "xFilesFactor"},
       fn_moving_average},
      {"movingMax", "Calculate", {"seriesList", "windowSize", "xFilesFactor"}, fn_moving_max},
      {"movingMedian", "Calculate", {"seriesList", "windowSize", "xFilesFactor"}, fn_moving_median},
      {"movingMin", "Calculate", {"seriesList", "windowSize", "xFilesFactor"}, fn_moving_min},
      {"movingSum", "Calculate", {"seriesList", "windowSize", "xFilesFactor"}, fn_moving_sum},
      {"movingWindow",
       "Calculate",
       {"seriesList", "windowSize", "func", "xFilesFactor"},
       fn_moving_window},
      {"multiplySeries", "Combine", {"*seriesLists"}, fn_multiply_series},
      {"multiplySeriesWithWildcards",
       "Combine",
       {"seriesList", "*position"},
       fn_multiply_series_with_wildcards},
      {"nPercentile", "Calculate", {"seriesList", "n"}, fn_n_percentile},
      {"nonNegativeDerivative",
       "Transform",
       {"seriesList", "maxValue", "minValue"},
       fn_non_negative_derivative},
      {"offset", "Transform", {"seriesList", "factor"}, fn_offset},
      {"percentileOfSeries",
       "Combine",
       {"seriesList", "n", "interpolate"},
       fn_percentile_of_series},
      {"perSecond", "Transform", {"seriesList", "maxValue", "minValue"}, fn_per_second},
      {"pow", "Transform", {"seriesList", "factor"}, fn_pow},
      {"rangeOfSeries", "Combine", {"*seriesLists"}, fn_range_series},
      {"removeAboveValue", "Filter Data", {"seriesList", "n"}, fn_remove_above_value},
      {"removeBelowValue", "Filter Data", {"seriesList", "n"}, fn_remove_below_value},
      {"scale", "Transform", {"seriesList", "factor"}, fn_scale},
      {"scaleToSeconds", "Transform", {"seriesList", "seconds"}, fn_scale_to_seconds},
      {"secondYAxis", "Graph", {"seriesList"}, fn_second_y_axis},
      {"sortBy", "Sorting", {"seriesList", "func", "reverse"}, fn_sort_by},
      {"sortByMaxima", "Sorting", {"seriesList"}, fn_sort_by_maxima},
      {"sortByMinima", "Sorting", {"seriesList"}, fn_sort_by_minima},
      {"sortByName", "Sorting", {"seriesList", "natural", "reverse"}, fn_sort_by_name},
      {"sortByTotal", "Sorting", {"seriesList"}, fn_sort_by_total},
      {"squareRoot", "Transform", {"seriesList"}, fn_square_root},
      {"stddevSeries", "Combine", {"*seriesLists"}, fn_stddev_series},
      {"substr", "Special", {"seriesList", "start", "stop"}, fn_substr},
      {"sum", "Combine", {"*seriesLists"}, fn_sum_series},
      {"sumSeries", "Combine", {"*seriesLists"}, fn_sum_series},
      {"sumSeriesWithWildcards",
       "Combine",
       {"seriesList", "*position"},
       fn_sum_series_with_wildcards},
      {"summarize",
       "Transform",
       {"seriesList", "intervalString", "func", "alignToFrom"},
       fn_summarize},
      {"threshold", "Graph", {"value", "label", "color"}, fn_threshold},
      {"timeShift",
       "Transform",
       {"seriesList", "timeShift", "resetEnd", "alignDST"},
       fn_time_shift},
      {"transformNull",
       "Transform",
       {"seriesList", "default", "referenceSeries"},
       fn_transform_null},
  };
  return kDefs;
}

const std::unordered_map<std::string, const FunctionDef*>& registry() {
  static const auto kMap = [] {
    std::unordered_map<std::string, const FunctionDef*> m;
    for (const FunctionDef& d : definitions()) m.emplace(d.name, &d);
    return m;
  }();
  return kMap;
}

const FunctionDef* find_function(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : it->second;
}

// graphite-web's ParamTypes of a parameter, by its name (the names are graphite-web's).
std::string param_type(const std::string& name) {
  static const std::map<std::string, std::string> kTypes = {{"seriesList", "seriesList"},
                                                            {"seriesLists", "seriesLists"},
                                                            {"dividendSeriesList", "seriesList"},
                                                            {"divisorSeries", "seriesList"},
                                                            {"referenceSeries", "seriesList"},
                                                            {"total", "any"},
                                                            {"nodes", "nodeOrTag"},
                                                            {"tags", "nodeOrTag"},
                                                            {"nodeNum", "nodeOrTag"},
                                                            {"position", "node"},
                                                            {"positions", "node"},
                                                            {"start", "node"},
                                                            {"stop", "node"},
                                                            {"func", "aggFunc"},
                                                            {"callback", "aggOrSeriesFunc"},
                                                            {"consolidationFunc", "string"},
                                                            {"windowSize", "intOrInterval"},
                                                            {"intervalString", "interval"},
                                                            {"timeShift", "interval"},
                                                            {"steps", "integer"},
                                                            {"limit", "integer"},
                                                            {"n", "integer"},
                                                            {"seconds", "float"},
                                                            {"natural", "boolean"},
                                                            {"reverse", "boolean"},
                                                            {"interpolate", "boolean"},
                                                            {"alignToFrom", "boolean"},
                                                            {"alignToInterval", "boolean"},
                                                            {"resetEnd", "boolean"},
                                                            {"alignDST", "boolean"},
                                                            {"newName", "string"},
                                                            {"search", "string"},
                                                            {"replace", "string"},
                                                            {"pattern", "string"},
                                                            {"label", "string"},
                                                            {"name", "string"},
                                                            {"theColor", "string"},
                                                            {"color", "string"},
                                                            {"operator", "string"},
                                                            {"tagExpressions", "string"}};
  auto it = kTypes.find(name);
  return it == kTypes.end() ? "float" : it->second;
}

bool optional_param(const std::string& fn, const std::string& name) {
  static const std::set<std::string> kOptional = {
      "xFilesFactor", "maxValue",        "minValue", "alignToFrom", "alignToInterval",
      "resetEnd",     "alignDST",        "natural",  "reverse",     "interpolate",
      "default",      "referenceSeries", "base",     "dashLength",  "label",
      "color",        "start",           "stop",     "total"};
  static const std::set<std::pair<std::string, std::string>> kOptionalIn = {
      {"groupByNode", "callback"}, {"highest", "n"},
      {"highest", "func"},         {"lowest", "n"},
      {"lowest", "func"},          {"sortBy", "func"},
      {"movingWindow", "func"},    {"summarize", "func"},
      {"keepLastValue", "limit"}};
  return kOptional.count(name) > 0 || kOptionalIn.count({fn, name}) > 0;
}

}  // namespace

std::string py_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, r.ptr);  // d[.ddd]e[+-]XX
  size_t e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  int exp = std::stoi(sci.substr(e + 1));
  bool neg = mantissa[0] == '-';
  if (neg) mantissa.erase(0, 1);
  std::string digits;
  for (char ch : mantissa)
    if (ch != '.') digits += ch;
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
      out = digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<size_t>(exp) + 1) + "." +
            digits.substr(static_cast<size_t>(exp) + 1);
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += ebuf;
  }
  return neg ? "-" + out : out;
}

Result<int64_t> parse_time_offset(std::string_view text) {
  return parse_graphite_offset(text);
}

Result<std::vector<Series>> evaluate(const Expr& target, const RenderContext& ctx) {
  Work work{ctx.max_calls, ctx.max_values};
  try {
    Evaluator ev(ctx, work);
    Value v = ev.value(target);
    if (v.kind != Value::Kind::kSeries) return std::vector<Series>{};
    return std::move(v.series);
  } catch (const FetchError& e) {
    return e.error;
  } catch (const RenderError& e) {
    return Error{e.what(), e.hint};
  } catch (const std::bad_alloc&) {
    return Error{std::string(kTooManySeries) + " the memory available", "read less"};
  } catch (const std::exception& e) {  // a defect: reported as a failed evaluation, not a 500
    return Error{"the evaluation failed: " + std::string(e.what()), ""};
  }
}

const std::vector<FunctionInfo>& function_list() {
  static const std::vector<FunctionInfo> kList = [] {
    std::vector<FunctionInfo> list;
    for (const FunctionDef& d : definitions()) {
      FunctionInfo info{d.name, d.group, {}, {}, {}};
      for (size_t i = 0; i < d.params.size(); ++i) {
        info.params += (i ? ", " : "") + d.params[i];
        FunctionParam p;
        p.multiple = d.params[i][0] == '*';
        p.name = p.multiple ? d.params[i].substr(1) : d.params[i];
        p.type = std::string_view(d.name) == "groupByTags" && p.name == "tags" ? "tag"
                                                                               : param_type(p.name);
        p.required = !optional_param(d.name, p.name);
        info.param_list.push_back(std::move(p));
      }
      info.description = std::string(d.name) + "(" + info.params + "): graphite-web 1.1.8's " +
                         d.name + ", computed as it computes it (names, None, order).";
      list.push_back(std::move(info));
    }
    std::sort(list.begin(), list.end(),
              [](const FunctionInfo& a, const FunctionInfo& b) { return a.name < b.name; });
    return list;
  }();
  return kList;
}

}  // namespace statherd::server::render
