#include "server/render/target.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <optional>

namespace statherd::server::render {
namespace {

// Characters that end a path element: graphite-web's grammar symbols, whitespace, controls.
bool path_char(char c) {
  static constexpr std::string_view kSymbols = "(){},.'\"\\|";
  auto u = static_cast<unsigned char>(c);
  return u > ' ' && u != 0x7f && kSymbols.find(c) == std::string_view::npos;
}
bool escapable(char c) {
  static constexpr std::string_view kEscapable = "(){},.'\"\\|=";
  return kEscapable.find(c) != std::string_view::npos;
}
bool ident_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

constexpr size_t kMaxDepth = 64;  // nested calls: a hostile target cannot exhaust the stack

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Result<Expr> whole() {
    auto e = expression(0);
    if (!e) return e;
    skip_space();
    if (pos_ != s_.size()) return fail("unexpected '" + std::string(1, s_[pos_]) + "'");
    return e;
  }

 private:
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool peek(char c) {
    skip_space();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  Error fail(const std::string& what) const {
    return Error{"target: " + what + " at offset " + std::to_string(pos_) + " of '" +
                     std::string(s_.substr(0, 200)) + "'",
                 "a target is a path (a.b.*) or a function call, e.g. "
                 "sumSeries(a.*.requests.rate); strings go in quotes"};
  }

  // (call | path) { '|' call }
  Result<Expr> expression(size_t depth) {
    if (depth > kMaxDepth) return fail("calls nested deeper than " + std::to_string(kMaxDepth));
    skip_space();
    Result<Expr> first = call_or_path(depth);
    if (!first) return first;
    Expr e = std::move(*first);
    while (peek('|')) {
      ++pos_;
      skip_space();
      size_t at = pos_;
      auto piped = call_or_path(depth);
      if (!piped) return piped;
      if (piped->kind != Expr::Kind::kCall) {
        pos_ = at;
        return fail("a function call expected after '|'");
      }
      piped->args.insert(piped->args.begin(), std::move(e));
      e = std::move(*piped);
    }
    return e;
  }

  Result<Expr> call_or_path(size_t depth) {
    size_t start = pos_;
    if (pos_ < s_.size() && ident_start(s_[pos_])) {
      size_t end = pos_;
      while (end < s_.size() && ident_char(s_[end])) ++end;
      size_t after = end;
      while (after < s_.size() && std::isspace(static_cast<unsigned char>(s_[after]))) ++after;
      if (after < s_.size() && s_[after] == '(') {
        Expr call;
        call.kind = Expr::Kind::kCall;
        call.text = std::string(s_.substr(start, end - start));
        pos_ = after + 1;
        if (auto st = arguments(call, depth); !st) return st.error();
        call.raw = std::string(s_.substr(start, pos_ - start));
        return call;
      }
    }
    return path();
  }

  Status arguments(Expr& call, size_t depth) {
    if (peek(')')) {
      ++pos_;
      return Ok{};
    }
    while (true) {
      skip_space();
      // name=value: a keyword argument, after which only keyword arguments may follow
      size_t save = pos_;
      std::string kwname;
      if (pos_ < s_.size() && ident_start(s_[pos_])) {
        size_t end = pos_;
        while (end < s_.size() && ident_char(s_[end])) ++end;
        size_t after = end;
        while (after < s_.size() && std::isspace(static_cast<unsigned char>(s_[after]))) ++after;
        if (after < s_.size() && s_[after] == '=') {
          kwname = std::string(s_.substr(pos_, end - pos_));
          pos_ = after + 1;
        }
      }
      auto value = argument(depth);
      if (!value) return value.error();
      if (!kwname.empty()) {
        call.kwarg_names.push_back(std::move(kwname));
        call.kwarg_values.push_back(std::move(*value));
      } else if (!call.kwarg_names.empty()) {
        pos_ = save;
        return fail("a positional argument after a keyword argument");
      } else {
        call.args.push_back(std::move(*value));
      }
      if (peek(',')) {
        ++pos_;
        continue;
      }
      if (peek(')')) {
        ++pos_;
        return Ok{};
      }
      return pos_ < s_.size() ? fail("',' or ')' expected") : fail("')' missing at the end");
    }
  }

  // A literal ends where a ',' or ')' or the end follows (graphite-web's lookahead).
  bool literal_ends(size_t at) {
    while (at < s_.size() && std::isspace(static_cast<unsigned char>(s_[at]))) ++at;
    return at == s_.size() || s_[at] == ',' || s_[at] == ')';
  }

  Result<Expr> argument(size_t depth) {
    skip_space();
    if (pos_ >= s_.size()) return fail("an argument expected");
    char c = s_[pos_];
    if (c == '"' || c == '\'') return quoted(c);
    // keywords: true, false, none, inf (any case), when the literal ends there
    size_t end = pos_;
    while (end < s_.size() && ident_char(s_[end])) ++end;
    std::string word(s_.substr(pos_, end - pos_));
    for (char& ch : word) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!word.empty() && literal_ends(end)) {
      Expr e;
      if (word == "true" || word == "false") {
        e.kind = Expr::Kind::kBool;
        e.boolean = word == "true";
      } else if (word == "none") {
        e.kind = Expr::Kind::kNone;
      } else if (word == "inf") {
        e.kind = Expr::Kind::kInf;
        e.number = HUGE_VAL;
      }
      if (e.kind != Expr::Kind::kNone || word == "none") {
        pos_ = end;
        e.text = std::string(s_.substr(pos_ - word.size(), word.size()));
        return e;
      }
    }
    if (auto n = number(); n) return std::move(*n);
    return expression(depth + 1);
  }

  // -?\d+(\.\d+)?([eE]-?\d+)? followed by ',' or ')' or the end; else not a number.
  std::optional<Expr> number_at() {
    size_t i = pos_;
    if (i < s_.size() && s_[i] == '-') ++i;
    size_t digits = i;
    while (i < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i]))) ++i;
    if (i == digits) return std::nullopt;
    bool is_float = false;
    if (i + 1 < s_.size() && s_[i] == '.' && std::isdigit(static_cast<unsigned char>(s_[i + 1]))) {
      is_float = true;
      ++i;
      while (i < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i]))) ++i;
    }
    if (i < s_.size() && (s_[i] == 'e' || s_[i] == 'E')) {
      size_t j = i + 1;
      if (j < s_.size() && s_[j] == '-') ++j;
      size_t exp_digits = j;
      while (j < s_.size() && std::isdigit(static_cast<unsigned char>(s_[j]))) ++j;
      if (j > exp_digits) {
        is_float = true;
        i = j;
      }
    }
    if (!literal_ends(i)) return std::nullopt;
    Expr e;
    e.kind = is_float ? Expr::Kind::kFloat : Expr::Kind::kInt;
    e.text = std::string(s_.substr(pos_, i - pos_));
    e.number = std::strtod(e.text.c_str(), nullptr);
    pos_ = i;
    return e;
  }
  std::optional<Expr> number() { return number_at(); }

  Result<Expr> quoted(char quote) {
    size_t i = pos_ + 1;
    while (i < s_.size() && s_[i] != quote) {
      if (s_[i] == '\n' || s_[i] == '\r') break;
      if (s_[i] == '\\' && i + 1 < s_.size()) ++i;
      ++i;
    }
    if (i >= s_.size() || s_[i] != quote) return fail("an unterminated string");
    Expr e;
    e.kind = Expr::Kind::kString;
    e.text = std::string(s_.substr(pos_ + 1, i - pos_ - 1));
    pos_ = i + 1;
    return e;
  }

  // Elements joined by '.', each of plain characters, \-escapes and {a,b} alternatives.
  Result<Expr> path() {
    Expr e;
    e.kind = Expr::Kind::kPath;
    size_t start = pos_;
    while (true) {
      size_t element_start = pos_;
      while (pos_ < s_.size()) {
        char c = s_[pos_];
        if (path_char(c)) {
          e.text += c;
          ++pos_;
        } else if (c == '\\' && pos_ + 1 < s_.size() && escapable(s_[pos_ + 1])) {
          e.text += s_[pos_ + 1];
          pos_ += 2;
        } else if (c == '{') {
          if (auto st = braces(e.text); !st) return st.error();
        } else {
          break;
        }
      }
      if (pos_ == element_start) break;
      if (pos_ < s_.size() && s_[pos_] == '.' && pos_ + 1 < s_.size() &&
          (path_char(s_[pos_ + 1]) || s_[pos_ + 1] == '{' || s_[pos_ + 1] == '\\')) {
        e.text += '.';
        ++pos_;
        continue;
      }
      break;
    }
    if (pos_ == start) {
      return pos_ < s_.size() ? fail("unexpected '" + std::string(1, s_[pos_]) + "'")
                              : fail("a path or a function call expected");
    }
    return e;
  }

  // {a,b,...}: alternatives of plain characters and escapes, kept with their braces.
  Status braces(std::string& out) {
    size_t open = pos_;
    out += '{';
    ++pos_;
    while (true) {
      size_t part = pos_;
      while (pos_ < s_.size()) {
        if (path_char(s_[pos_])) {
          out += s_[pos_++];
        } else if (s_[pos_] == '\\' && pos_ + 1 < s_.size() && escapable(s_[pos_ + 1])) {
          out += s_[pos_ + 1];
          pos_ += 2;
        } else {
          break;
        }
      }
      if (pos_ == part) {
        pos_ = open;
        return fail("an empty or unclosed {...} alternative");
      }
      if (pos_ < s_.size() && s_[pos_] == ',') {
        out += ',';
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        out += '}';
        ++pos_;
        return Ok{};
      }
      pos_ = open;
      return fail("a {...} alternative without its '}'");
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

Result<Expr> parse_target(std::string_view text) {
  return Parser(text).whole();
}

std::string to_string(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::kPath:
    case Expr::Kind::kInt:
    case Expr::Kind::kFloat:
      return e.text;
    case Expr::Kind::kString:
      return "'" + e.text + "'";
    case Expr::Kind::kBool:
      return e.boolean ? "true" : "false";
    case Expr::Kind::kNone:
      return "None";
    case Expr::Kind::kInf:
      return "inf";
    case Expr::Kind::kCall: {
      std::string s = e.text + "(";
      bool first = true;
      for (const Expr& a : e.args) {
        s += (first ? "" : ",") + to_string(a);
        first = false;
      }
      for (size_t i = 0; i < e.kwarg_names.size(); ++i) {
        s += (first ? "" : ",") + e.kwarg_names[i] + "=" + to_string(e.kwarg_values[i]);
        first = false;
      }
      return s + ")";
    }
  }
  return {};
}

}  // namespace statherd::server::render
