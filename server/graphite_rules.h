// Graphite-only output shaping: Scales-style allow / forbid / prune rules on the final path.
// (The Graphite tag form of a path, ";k=v" instead of ".k.v" components, is named in
// server/sinks/graphite_naming.h.)
//
// Rule semantics (modelled on Scales' GraphitePusher, with regular expressions instead of
// fnmatch globs; each RE is compiled once, ECMAScript syntax, and *searched* in the path, so
// anchor with ^ and $ when needed). The path checked is the dotted path without any ";k=v" tags:
//   1. prune: if a prune RE matches the full path or any ancestor node of it (the path cut at a
//      '.'), the line is dropped. Pruning wins over everything, as in Scales where a pruned
//      subtree is never visited.
//   2. allow / forbid: the LAST rule (in config order) whose RE matches decides (newer rules have
//      higher precedence, as in Scales).
//   3. no allow/forbid rule matches: forbidden if any allow rule exists (a whitelist, Scales'
//      "forbidden by default"), allowed otherwise (so a list of only forbid rules is a blacklist).
// No rules at all: every path passes. These rules apply to the Graphite sink only; the memory
// store (/render), Prometheus and remote_write see every series.
#pragma once

#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace statherd::server {

enum class GraphiteRuleKind : uint8_t { Allow, Forbid, Prune };

struct GraphiteRule {
  GraphiteRuleKind kind = GraphiteRuleKind::Allow;
  std::string pattern;  // the RE as written in the config
  std::regex compiled;
};

// "allow" / "forbid" / "prune" -> kind; compiles `pattern`. Error says why the RE is bad.
Result<GraphiteRule> make_graphite_rule(std::string_view kind, const std::string& pattern);

class GraphiteRules {
 public:
  GraphiteRules() = default;
  explicit GraphiteRules(std::vector<GraphiteRule> rules);

  bool empty() const { return rules_.empty(); }
  const std::vector<GraphiteRule>& rules() const { return rules_; }
  // True if a line with this dotted path (no ";k=v" tags) may be sent.
  bool passes(std::string_view path) const;

 private:
  bool pruned(std::string_view path) const;
  std::vector<GraphiteRule> rules_;
  bool has_allow_ = false;
};

}  // namespace statherd::server
