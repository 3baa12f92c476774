// Graphite name sanitizing and glob matching (see names.h).
//
// Glob semantics follow Graphite's finders: braces are expanded first ({a,b} may hold wildcards
// and may nest), then each alternative is matched like fnmatch within one component: '*' any
// run, '?' one byte, '[abc]' / '[a-z]' / '[!a-z]' / '[^a-z]' a set. An unclosed '[' or '{' is a
// literal. Patterns come from HTTP queries, so brace expansion is capped (kMaxAlternatives) and
// star matching is the linear backtracking algorithm (no exponential blow-up).
#include "common/names.h"

namespace statherd {

namespace {

constexpr size_t kMaxAlternatives = 4096;

bool is_component_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// Parses a '[...]' set starting at pattern[i] == '['. Returns the index after ']' or npos if the
// set is unclosed; sets `matched` to whether byte c is in the set.
size_t match_set(std::string_view p, size_t i, char c, bool& matched) {
  size_t j = i + 1;
  bool negate = false;
  if (j < p.size() && (p[j] == '!' || p[j] == '^')) {
    negate = true;
    ++j;
  }
  bool in = false;
  bool first = true;
  for (; j < p.size(); ++j) {
    if (p[j] == ']' && !first) {
      matched = in != negate;
      return j + 1;
    }
    first = false;
    if (j + 2 < p.size() && p[j + 1] == '-' && p[j + 2] != ']') {
      auto lo = static_cast<unsigned char>(p[j]), hi = static_cast<unsigned char>(p[j + 2]);
      auto uc = static_cast<unsigned char>(c);
      if (lo <= uc && uc <= hi) in = true;
      j += 2;
    } else if (p[j] == c) {
      in = true;
    }
  }
  return std::string_view::npos;
}

// fnmatch-style matching of a brace-free pattern; '.' is an ordinary byte here.
bool simple_match(std::string_view p, std::string_view t) {
  size_t pi = 0, ti = 0;
  size_t star_p = std::string_view::npos, star_t = 0;
  while (ti < t.size()) {
    if (pi < p.size()) {
      if (p[pi] == '*') {
        star_p = pi++;
        star_t = ti;
        continue;
      }
      if (p[pi] == '?') {
        ++pi;
        ++ti;
        continue;
      }
      if (p[pi] == '[') {
        bool matched = false;
        size_t next = match_set(p, pi, t[ti], matched);
        if (next != std::string_view::npos) {
          if (matched) {
            pi = next;
            ++ti;
            continue;
          }
        } else if (t[ti] == '[') {  // unclosed set: literal '['
          ++pi;
          ++ti;
          continue;
        }
      } else if (p[pi] == t[ti]) {
        ++pi;
        ++ti;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    pi = star_p + 1;  // let the last star swallow one more byte
    ti = ++star_t;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

// Index of the '}' closing the '{' at i, or npos.
size_t closing_brace(std::string_view p, size_t i) {
  int depth = 0;
  for (size_t j = i; j < p.size(); ++j) {
    if (p[j] == '{') ++depth;
    if (p[j] == '}' && --depth == 0) return j;
  }
  return std::string_view::npos;
}

// Appends every brace expansion of p to out. Returns false when more than `max` alternatives.
bool expand_braces(std::string_view p, std::vector<std::string>& out,
                   size_t max = kMaxAlternatives) {
  size_t open = p.find('{');
  size_t close = std::string_view::npos;
  while (open != std::string_view::npos) {
    close = closing_brace(p, open);
    if (close != std::string_view::npos) break;
    open = p.find('{', open + 1);  // unclosed: literal, look further
  }
  if (open == std::string_view::npos) {
    if (out.size() >= max) return false;
    out.emplace_back(p);
    return true;
  }
  std::string_view head = p.substr(0, open), tail = p.substr(close + 1);
  std::string_view body = p.substr(open + 1, close - open - 1);
  int depth = 0;
  size_t start = 0;
  for (size_t j = 0; j <= body.size(); ++j) {
    if (j < body.size() && body[j] == '{') ++depth;
    if (j < body.size() && body[j] == '}') --depth;
    if (j == body.size() || (body[j] == ',' && depth == 0)) {
      std::string alt;
      alt.reserve(head.size() + (j - start) + tail.size());
      alt.append(head).append(body.substr(start, j - start)).append(tail);
      if (!expand_braces(alt, out, max)) return false;
      start = j + 1;
    }
  }
  return true;
}

bool components_match(std::string_view pattern, std::string_view path) {
  auto pc = split_dots(pattern);
  auto tc = split_dots(path);
  if (pc.size() != tc.size()) return false;
  for (size_t i = 0; i < pc.size(); ++i) {
    if (!simple_match(pc[i], tc[i])) return false;
  }
  return true;
}

}  // namespace

void append_graphite_component(std::string& out, std::string_view s) {
  if (s.empty()) {
    out.push_back('_');
    return;
  }
  const size_t at = out.size();
  out.append(s);
  for (size_t i = at; i < out.size(); ++i)
    if (!is_component_byte(static_cast<unsigned char>(out[i]))) out[i] = '_';
}

std::string sanitize_graphite_component(std::string_view s) {
  std::string out;
  append_graphite_component(out, s);
  return out;
}

void append_graphite_path(std::string& out, std::string_view dotted) {
  for (size_t start = 0;;) {
    const size_t dot = dotted.find('.', start);
    append_graphite_component(out, dotted.substr(start, dot - start));
    if (dot == std::string_view::npos) return;
    out.push_back('.');
    start = dot + 1;
  }
}

std::string sanitize_graphite_path(std::string_view dotted) {
  std::string out;
  out.reserve(dotted.size() + 2);
  append_graphite_path(out, dotted);
  return out;
}

std::string sanitize_graphite_tag(std::string_view s) {
  return sanitize_graphite_component(s);
}

bool graphite_component_match(std::string_view pattern, std::string_view text) {
  if (pattern.find('{') == std::string_view::npos) return simple_match(pattern, text);
  std::vector<std::string> alternatives;
  if (!expand_braces(pattern, alternatives)) return false;
  for (const auto& alt : alternatives) {
    if (simple_match(alt, text)) return true;
  }
  return false;
}

bool graphite_path_match(std::string_view pattern, std::string_view path) {
  if (pattern.find('{') == std::string_view::npos) return components_match(pattern, path);
  std::vector<std::string> alternatives;
  if (!expand_braces(pattern, alternatives)) return false;
  for (const auto& alt : alternatives) {
    if (components_match(alt, path)) return true;
  }
  return false;
}

bool expand_graphite_braces(std::string_view pattern, std::vector<std::string>& out,
                            size_t max_alternatives) {
  return expand_braces(pattern, out, max_alternatives);
}

std::vector<std::string_view> split_dots(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
}

}  // namespace statherd
