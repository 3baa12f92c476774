#include "server/graphite_tags.h"

#include <re2/re2.h>

#include <algorithm>

namespace statherd::server {

namespace {

constexpr size_t kMaxRegex = 512;  // as /render's aliasSub, grep and exclude

// ^(pattern) unless it is anchored already, as graphite-web's tag database anchors it.
Result<std::unique_ptr<re2::RE2>> anchored_regex(const std::string& pattern,
                                                 const std::string& what) {
  if (pattern.size() > kMaxRegex) {
    return Error{what + ": the regular expression is longer than " + std::to_string(kMaxRegex),
                 "shorten it"};
  }
  RE2::Options options;
  options.set_log_errors(false);
  const std::string anchored = pattern.starts_with('^') ? pattern : "^(" + pattern + ")";
  auto re = std::make_unique<re2::RE2>(anchored, options);
  if (!re->ok()) {
    re2::RE2 alone(pattern, options);  // its own error, without the ^(...) added here
    return Error{what + ": invalid regular expression '" + pattern +
                     "': " + (alone.ok() ? re->error() : alone.error()),
                 "RE2 syntax (Python's, without backreferences or lookarounds)"};
  }
  return re;
}

}  // namespace

std::optional<TagMap> parse_tagged_path(std::string_view path) {
  const size_t semi = path.find(';');
  std::string_view metric = path.substr(0, semi);
  if (metric.empty()) return std::nullopt;
  TagMap tags;
  for (size_t at = semi; at != std::string_view::npos;) {
    const size_t next = path.find(';', at + 1);
    std::string_view segment = path.substr(
        at + 1, next == std::string_view::npos ? std::string_view::npos : next - at - 1);
    const size_t eq = segment.find('=');
    if (eq == std::string_view::npos || eq == 0) return std::nullopt;
    std::string_view tag = segment.substr(0, eq), value = segment.substr(eq + 1);
    if (value.empty() || value.front() == '~') return std::nullopt;
    if (tag.find_first_of(";!^=") != std::string_view::npos) return std::nullopt;
    tags[std::string(tag)] = std::string(value);
    at = next;
  }
  // graphite-web strips leading '~' off the name tag (sanitize_name_as_tag_value).
  const size_t keep = metric.find_first_not_of('~');
  if (keep == std::string_view::npos) return std::nullopt;
  tags["name"] = std::string(metric.substr(keep));
  return tags;
}

std::string format_tagged_path(const TagMap& tags) {
  std::vector<std::string> segments;
  for (const auto& [k, v] : tags)
    if (k != "name") segments.push_back(";" + k + "=" + v);
  std::sort(segments.begin(), segments.end());
  auto name = tags.find("name");
  std::string out = name == tags.end() ? std::string() : name->second;
  for (const std::string& s : segments) out += s;
  return out;
}

TagQuery::TagQuery(TagQuery&&) noexcept = default;
TagQuery& TagQuery::operator=(TagQuery&&) noexcept = default;
TagQuery::~TagQuery() = default;

Result<TagQuery> TagQuery::compile(const std::vector<std::string>& expressions) {
  TagQuery q;
  bool all_match_empty = true;
  for (const std::string& e : expressions) {
    const size_t op_at = e.find_first_of("!=");
    const Error invalid{"invalid tag expression '" + e.substr(0, 200) + "'",
                        "tag=value, tag!=value, tag=~regex or tag!=~regex, one per argument"};
    if (op_at == 0 || op_at == std::string::npos || e.find(';') != std::string::npos)
      return invalid;
    Term t;
    t.tag = e.substr(0, op_at);
    size_t spec_at = op_at + 1;
    bool negated = e[op_at] == '!';
    if (negated) {
      if (op_at + 1 >= e.size() || e[op_at + 1] != '=') return invalid;
      spec_at = op_at + 2;
    }
    const bool regex = spec_at < e.size() && e[spec_at] == '~';
    if (regex) ++spec_at;
    t.spec = e.substr(spec_at);
    bool matches_empty = false;
    if (regex) {
      auto re = anchored_regex(t.spec, "tag expression '" + e.substr(0, 200) + "'");
      if (!re) return re.error();
      t.re = std::move(*re);
      const bool empty_matches = RE2::PartialMatch("", *t.re);
      t.op = negated ? Op::kNotMatch : Op::kMatch;
      matches_empty = negated ? !empty_matches : empty_matches;
    } else {
      t.op = negated ? Op::kNe : Op::kEq;
      matches_empty = negated ? !t.spec.empty() : t.spec.empty();
    }
    t.matches_empty = matches_empty;
    all_match_empty = all_match_empty && matches_empty;
    q.terms_.push_back(std::move(t));
  }
  for (const Term& t : q.terms_) {
    if (t.matches_empty) continue;
    const Term* term = &t;
    q.requirements_.push_back({t.tag, [term](const std::string& v) { return holds(*term, v); }});
  }
  if (all_match_empty) {
    return Error{"at least one tag expression must not match the empty value",
                 "e.g. seriesByTag('name=app.requests'); 'tag!=x' alone matches every series"};
  }
  return q;
}

bool TagQuery::holds(const Term& t, const std::string& value) {
  switch (t.op) {
    case Op::kEq:
      return value == t.spec;
    case Op::kNe:
      return value != t.spec;
    case Op::kMatch:
      return RE2::PartialMatch(value, *t.re);
    case Op::kNotMatch:
      return !RE2::PartialMatch(value, *t.re);
  }
  return false;
}

bool TagQuery::matches(const TagMap& tags) const {
  static const std::string kEmpty;
  for (const Term& t : terms_) {
    auto it = tags.find(t.tag);
    if (!holds(t, it == tags.end() ? kEmpty : it->second)) return false;
  }
  return true;
}

std::vector<std::string> TagQuery::tags() const {
  std::vector<std::string> out;
  for (const Term& t : terms_) out.push_back(t.tag);
  return out;
}

TagFilter::TagFilter(TagFilter&&) noexcept = default;
TagFilter& TagFilter::operator=(TagFilter&&) noexcept = default;
TagFilter::~TagFilter() = default;

Result<TagFilter> TagFilter::compile(const std::string& pattern) {
  auto re = anchored_regex(pattern, "filter");
  if (!re) return re.error();
  TagFilter f;
  f.re_ = std::move(*re);
  return f;
}

bool TagFilter::matches(std::string_view text) const {
  return RE2::PartialMatch(text, *re_);
}

}  // namespace statherd::server
