#include "server/graphite_rules.h"

namespace statherd::server {

Result<GraphiteRule> make_graphite_rule(std::string_view kind, const std::string& pattern) {
  GraphiteRule rule;
  if (kind == "allow") {
    rule.kind = GraphiteRuleKind::Allow;
  } else if (kind == "forbid") {
    rule.kind = GraphiteRuleKind::Forbid;
  } else if (kind == "prune") {
    rule.kind = GraphiteRuleKind::Prune;
  } else {
    return make_error("unknown rule kind '" + std::string(kind) + "'",
                      "each rule is one of {allow: RE}, {forbid: RE}, {prune: RE}");
  }
  if (pattern.empty()) {
    return make_error("empty regular expression", "an empty RE would match every path; use '.'");
  }
  rule.pattern = pattern;
  try {
    rule.compiled = std::regex(pattern, std::regex::ECMAScript | std::regex::optimize);
  } catch (const std::regex_error& e) {
    return make_error("bad regular expression '" + pattern + "': " + e.what(),
                      "ECMAScript syntax, e.g. '^statherd\\.web\\.' or '\\.p99$'");
  }
  return rule;
}

GraphiteRules::GraphiteRules(std::vector<GraphiteRule> rules) : rules_(std::move(rules)) {
  for (const GraphiteRule& rule : rules_) {
    if (rule.kind == GraphiteRuleKind::Allow) has_allow_ = true;
  }
}

bool GraphiteRules::pruned(std::string_view path) const {
  for (const GraphiteRule& rule : rules_) {
    if (rule.kind != GraphiteRuleKind::Prune) continue;
    // Every ancestor node ("a", "a.b", ...) and the path itself.
    for (size_t end = path.find('.'); ; end = path.find('.', end + 1)) {
      std::string_view node = path.substr(0, end);
      if (std::regex_search(node.begin(), node.end(), rule.compiled)) return true;
      if (end == std::string_view::npos) break;
    }
  }
  return false;
}

bool GraphiteRules::passes(std::string_view path) const {
  if (rules_.empty()) return true;
  if (pruned(path)) return false;
  for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
    if (it->kind == GraphiteRuleKind::Prune) continue;
    if (std::regex_search(path.begin(), path.end(), it->compiled)) {
      return it->kind == GraphiteRuleKind::Allow;
    }
  }
  return !has_allow_;
}

}  // namespace statherd::server
