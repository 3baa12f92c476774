// A Graphite glob pattern from a query (/render target=, /metrics/find query=), checked against
// ReadLimits and brace-expanded once per request, so that matching it against each stored path
// costs (alternatives x components) and never re-expands braces per path.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "server/read_limits.h"

namespace statherd::server {

class GraphitePattern {
 public:
  // Errors (a 400 for the caller): longer than max_pattern_bytes, braces nested deeper than
  // max_brace_depth, more than `alternatives_left` alternatives after expansion (the caller's
  // budget for the whole request; decreased by this pattern's count).
  static Result<GraphitePattern> compile(std::string_view text, const ReadLimits& limits,
                                         size_t& alternatives_left);

  const std::string& text() const { return text_; }
  // The leading components without glob characters ("statherd.web" of "statherd.web.*.p99").
  const std::string& literal_prefix() const { return literal_prefix_; }
  size_t alternatives() const { return alternatives_.size(); }
  // Whole path, component by component (same count).
  bool matches(std::string_view path) const;
  // /metrics/find: for each alternative whose components match the path's first ones, the
  // length of that prefix of `path` (its node id) and whether it is the whole path (a leaf).
  template <class Fn>
  void for_each_prefix_match(std::string_view path, Fn&& fn) const;

 private:
  // Length of the prefix of `path` made of alt's component count if each matches, else npos.
  static size_t match_prefix(const std::vector<std::string>& alt, std::string_view path);

  std::string text_;
  std::string literal_prefix_;
  std::vector<std::vector<std::string>> alternatives_;  // components of each expansion
};

template <class Fn>
void GraphitePattern::for_each_prefix_match(std::string_view path, Fn&& fn) const {
  for (const auto& alt : alternatives_) {
    size_t len = match_prefix(alt, path);
    if (len != std::string_view::npos) fn(len, len == path.size());
  }
}

}  // namespace statherd::server
