#include "agent/once_report.h"

#include <array>
#include <string_view>

namespace statherd::agent {

std::string without_next_scrape_hint(std::string message) {
  static constexpr std::array<std::string_view, 4> kClauses = {
      "; it is mapped and read again next scrape", "; it is read again next scrape",
      "; it is read afresh next scrape", "; read again next scrape"};
  for (std::string_view clause : kClauses) {
    for (size_t at = message.find(clause); at != std::string::npos; at = message.find(clause))
      message.erase(at, clause.size());
  }
  return message;
}

std::string nothing_found_message(const std::vector<std::string>& searched) {
  std::string text = "nothing to read: no stat file or endpoint matched; searched:";
  if (searched.empty()) text += " no source configured";
  for (const std::string& s : searched) text += "\n  " + s;
  return text +
         "\nhint: start a writer (clients/python) or point --mmstats-glob, --v2-glob, "
         "--prom-multiproc-dir, --scales-url or --prometheus-url at your processes";
}

}  // namespace statherd::agent
