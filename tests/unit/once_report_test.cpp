// statherd-agent --once's stderr report (agent/once_report.h).
#include "agent/once_report.h"

#include <gtest/gtest.h>

namespace statherd::agent {
namespace {

TEST(OnceReport, DropsTheNextScrapeClauseFromHints) {
  EXPECT_EQ(without_next_scrape_hint("mmstats v1: empty file (0 bytes)\nhint: the writer may be "
                                     "starting; read again next scrape"),
            "mmstats v1: empty file (0 bytes)\nhint: the writer may be starting");
  EXPECT_EQ(without_next_scrape_hint("bad\nhint: not an mmstats v1 file, or is being created or "
                                     "truncated; it is read again next scrape"),
            "bad\nhint: not an mmstats v1 file, or is being created or truncated");
  EXPECT_EQ(without_next_scrape_hint("shrank\nhint: a writer rewrote it in place; it is mapped "
                                     "and read again next scrape"),
            "shrank\nhint: a writer rewrote it in place");
  EXPECT_EQ(without_next_scrape_hint("cannot open: EACCES"), "cannot open: EACCES");
}

TEST(OnceReport, NothingFoundNamesEverySearchedSource) {
  const std::string text = nothing_found_message(
      {"mmstats_v1 /tmp/none/*.mmstats", "scales_http http://127.0.0.1:1/status"});
  EXPECT_EQ(text.find("nothing to read"), 0u) << text;
  EXPECT_NE(text.find("\n  mmstats_v1 /tmp/none/*.mmstats\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  scales_http http://127.0.0.1:1/status\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nhint: "), std::string::npos) << text;
  EXPECT_NE(nothing_found_message({}).find("no source configured"), std::string::npos);
}

}  // namespace
}  // namespace statherd::agent
