// What `statherd-agent --once` says on stderr besides the per-source errors: the sources it
// searched when nothing matched (it was silent, exit 0, even with --verbose), and error hints
// without the daemon's "read again next scrape" (there is no next scrape in --once).
#pragma once

#include <string>
#include <vector>

namespace statherd::agent {

// `message` without the clauses promising a retry at the next scrape ("; it is read again
// next scrape", "; read again next scrape", ...), which only the daemon keeps.
std::string without_next_scrape_hint(std::string message);

// The warning printed when no source yielded anything and none failed: one line per searched
// source (its describe(): kind and globs, directories or URLs) and a hint.
std::string nothing_found_message(const std::vector<std::string>& searched);

}  // namespace statherd::agent
