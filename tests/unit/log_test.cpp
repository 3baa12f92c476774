// Log lines: the time prefix a daemon run by hand gets, and the journal detection that leaves it
// out under systemd (whose journal stamps lines itself).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/log.h"

namespace statherd::log {
namespace {

TEST(Log, TimestampPrefixIsUtcToTheMillisecond) {
  EXPECT_EQ(timestamp_prefix(0), "1970-01-01T00:00:00.000Z ");
  EXPECT_EQ(timestamp_prefix(1'796'138'421'123), "2026-12-01T15:20:21.123Z ");
  EXPECT_EQ(timestamp_prefix(1'796'138'421'999), "2026-12-01T15:20:21.999Z ");
}

// Runs `body` with stderr sent to a temp file and returns what was written there.
template <typename F>
std::string captured_stderr(F body) {
  char path[] = "/tmp/statherd-log-test-XXXXXX";
  int fd = ::mkstemp(path);
  int saved = ::dup(2);
  ::dup2(fd, 2);
  body();
  ::dup2(saved, 2);
  ::close(saved);
  std::string text;
  char buf[512];
  ::lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  ::close(fd);
  ::unlink(path);
  return text;
}

TEST(Log, JournalIsStderrOnlyWhenJournalStreamNamesIt) {
  std::string with_journal, without;
  captured_stderr([&] {
    struct stat st {};
    ASSERT_EQ(::fstat(2, &st), 0);
    const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
    EXPECT_TRUE(stderr_is_journal());
    ::setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":1").c_str(), 1);
    EXPECT_FALSE(stderr_is_journal());  // another stream: stderr was redirected elsewhere
    ::setenv("JOURNAL_STREAM", "garbage", 1);
    EXPECT_FALSE(stderr_is_journal());
    ::unsetenv("JOURNAL_STREAM");
    EXPECT_FALSE(stderr_is_journal());
  });
}

TEST(Log, LinesCarryTheTimeOnlyWhenAsked) {
  set_program("statherd-test");
  std::string text = captured_stderr([] {
    set_timestamps(false);
    warn("plain");
    set_timestamps(true);
    warn("stamped");
    set_timestamps(false);
  });
  const auto nl = text.find('\n');
  ASSERT_NE(nl, std::string::npos) << text;
  EXPECT_EQ(text.substr(0, nl), "statherd-test: warning: plain");
  const std::string second = text.substr(nl + 1);
  // "YYYY-MM-DDTHH:MM:SS.mmmZ statherd-test: warning: stamped\n"
  ASSERT_EQ(second.size(), 25 + std::string("statherd-test: warning: stamped\n").size()) << second;
  EXPECT_EQ(second[4], '-');
  EXPECT_EQ(second[10], 'T');
  EXPECT_EQ(second[23], 'Z');
  EXPECT_EQ(second.substr(25), "statherd-test: warning: stamped\n");
}

}  // namespace
}  // namespace statherd::log
