// libFuzzer target: Graphite tag parsing and tag expressions (seriesByTag, /tags/findSeries)
// must never crash. Input: a tagged path on the first line, tag expressions on the next ones.
// Checked: a parsed path formats to a path that parses to the same tags; a query that matches
// a series' tags has every requirement (an expression that needs a value) accept that value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "server/graphite_tags.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace statherd::server;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> lines;
  for (size_t at = 0; at <= text.size() && lines.size() < 64;) {
    const size_t nl = text.find('\n', at);
    lines.emplace_back(text.substr(at, nl == std::string_view::npos ? std::string_view::npos
                                                                     : nl - at));
    if (nl == std::string_view::npos) break;
    at = nl + 1;
  }
  auto tags = parse_tagged_path(lines.empty() ? std::string() : lines[0]);
  if (tags) {
    auto again = parse_tagged_path(format_tagged_path(*tags));
    if (!again || *again != *tags) std::abort();
  }
  std::vector<std::string> expressions(lines.empty() ? lines.end() : lines.begin() + 1,
                                       lines.end());
  auto query = TagQuery::compile(expressions);
  if (query && tags && query->matches(*tags)) {
    for (const TagQuery::Requirement& r : query->requirements()) {
      auto it = tags->find(r.tag);
      if (it == tags->end() || !r.accepts(it->second)) std::abort();
    }
  }
  if (auto filter = TagFilter::compile(lines.empty() ? std::string() : lines.back())) {
    (void)filter->matches(text);
  }
  return 0;
}
