#include "server/graphite_pattern.h"

#include "common/names.h"

namespace statherd::server {

namespace {

// Deepest nesting of '{' (unclosed ones count too: a bound, not a parse).
size_t brace_depth(std::string_view text) {
  size_t depth = 0, deepest = 0;
  for (char ch : text) {
    if (ch == '{') deepest = std::max(deepest, ++depth);
    if (ch == '}' && depth > 0) --depth;
  }
  return deepest;
}

bool has_glob(std::string_view component) {
  return component.find_first_of("*?[{") != std::string_view::npos;
}

}  // namespace

Result<GraphitePattern> GraphitePattern::compile(std::string_view text, const ReadLimits& limits,
                                                 size_t& alternatives_left) {
  const std::string shown = text.size() > 80 ? std::string(text.substr(0, 80)) + "..."
                                             : std::string(text);
  if (text.size() > limits.max_pattern_bytes) {
    return make_error("pattern of " + std::to_string(text.size()) + " bytes is over the limit of " +
                          std::to_string(limits.max_pattern_bytes) + " bytes: " + shown,
                      "use a shorter pattern, or raise reads.max_pattern_bytes");
  }
  if (size_t depth = brace_depth(text); depth > limits.max_brace_depth) {
    return make_error("braces nested " + std::to_string(depth) + " deep, over the limit of " +
                          std::to_string(limits.max_brace_depth) + ": " + shown,
                      "nest {a,b} less deeply, or raise reads.max_brace_depth");
  }
  std::vector<std::string> expanded;
  if (!expand_graphite_braces(text, expanded, alternatives_left)) {
    return make_error("the request's patterns expand to more than " +
                          std::to_string(limits.max_alternatives) + " alternatives: " + shown,
                      "use fewer {a,b} alternatives (or * instead), or raise "
                      "reads.max_alternatives");
  }
  alternatives_left -= expanded.size();
  GraphitePattern p;
  p.text_ = std::string(text);
  for (std::string_view part : split_dots(text)) {
    if (has_glob(part)) break;
    if (!p.literal_prefix_.empty()) p.literal_prefix_ += '.';
    p.literal_prefix_ += part;
  }
  p.alternatives_.reserve(expanded.size());
  for (const std::string& alt : expanded) {
    std::vector<std::string> comps;
    for (std::string_view c : split_dots(alt)) comps.emplace_back(c);
    p.alternatives_.push_back(std::move(comps));
  }
  return p;
}

size_t GraphitePattern::match_prefix(const std::vector<std::string>& alt, std::string_view path) {
  size_t start = 0;
  for (size_t i = 0; i < alt.size(); ++i) {
    if (start > path.size()) return std::string_view::npos;
    size_t dot = path.find('.', start);
    size_t end = dot == std::string_view::npos ? path.size() : dot;
    if (!graphite_component_match(alt[i], path.substr(start, end - start))) {
      return std::string_view::npos;
    }
    if (i + 1 == alt.size()) return end;
    start = end + 1;
    if (dot == std::string_view::npos) return std::string_view::npos;  // path too short
  }
  return std::string_view::npos;
}

bool GraphitePattern::matches(std::string_view path) const {
  for (const auto& alt : alternatives_) {
    if (match_prefix(alt, path) == path.size()) return true;
  }
  return false;
}

}  // namespace statherd::server
