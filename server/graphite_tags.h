// Graphite's tags as graphite-web 1.1's tag database sees them. Every stored path is a tagged
// series: "name;k=v;k2=v2" has the tags {name, k, k2}, a plain path "a.b.c" the one tag
// {name: "a.b.c"} (carbon registers every series it creates, tagged or not). A TagQuery is the
// list of tag expressions of seriesByTag(), /tags/findSeries and /tags/autoComplete:
//   tag=spec    the value is spec            tag!=spec   the value is not spec
//   tag=~re     the value matches re         tag!=~re    the value does not match re
// A series without the tag has the value "" there; a regular expression is anchored at the
// start of the value (wrapped in ^(...) unless it starts with ^); at least one expression must
// not match "" (else every series would match). Regular expressions are RE2 (linear in the
// value: a hostile pattern cannot stall the read thread).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace re2 {
class RE2;
}

namespace statherd::server {

using TagMap = std::map<std::string, std::string>;

// graphite-web's TaggedSeries.parse of a carbon path: {"name": the text before the first ';',
// each "k=v" segment}; "name" is always the metric (a ";name=x" segment does not override
// it). nullopt for what graphite-web refuses: an empty metric or tag, a segment without '=',
// an empty value, a tag holding one of ";!^=", a value starting with '~'.
std::optional<TagMap> parse_tagged_path(std::string_view path);

// graphite-web's TaggedSeries.format: the name, then the ";k=v" segments sorted as strings
// (";a-b=1" sorts before ";a=1": '-' < '='). The canonical form carbon stores.
std::string format_tagged_path(const TagMap& tags);

class TagQuery {
 public:
  // An error names the expression: "invalid tag expression 'x'" (no operator, or a ';' in
  // it), an invalid regular expression, or every expression matching "" (none given).
  static Result<TagQuery> compile(const std::vector<std::string>& expressions);
  TagQuery(TagQuery&&) noexcept;
  TagQuery& operator=(TagQuery&&) noexcept;
  ~TagQuery();

  bool matches(const TagMap& tags) const;
  size_t size() const { return terms_.size(); }  // expressions
  // The tags the expressions name (autoComplete leaves them out of its answer).
  std::vector<std::string> tags() const;

  // An expression that does not match "": every match has a value of `tag` it accepts (an
  // index of values can then give the candidates).
  struct Requirement {
    std::string tag;
    std::function<bool(const std::string&)> accepts;
  };
  const std::vector<Requirement>& requirements() const { return requirements_; }

 private:
  TagQuery() = default;
  enum class Op { kEq, kNe, kMatch, kNotMatch };
  struct Term {
    std::string tag;
    Op op;
    std::string spec;
    std::unique_ptr<re2::RE2> re;  // kMatch, kNotMatch
    bool matches_empty = false;
  };
  static bool holds(const Term& t, const std::string& value);
  std::vector<Term> terms_;
  std::vector<Requirement> requirements_;  // point into terms_' elements (stable on a move)
};

// A regular expression of /tags?filter= or /tags/<tag>?filter=, anchored as graphite-web
// anchors it; matches() is a search from the start. An error names the pattern.
class TagFilter {
 public:
  static Result<TagFilter> compile(const std::string& pattern);
  TagFilter(TagFilter&&) noexcept;
  TagFilter& operator=(TagFilter&&) noexcept;
  ~TagFilter();
  bool matches(std::string_view text) const;

 private:
  TagFilter() = default;
  std::unique_ptr<re2::RE2> re_;
};

}  // namespace statherd::server
