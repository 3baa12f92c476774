// OnceLineWriter (the streaming --once output): byte-identical to append_once_lines however the
// lines fall across chunks, with cached name heads that follow the samples.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <string>

#include "agent/once_output.h"

namespace statherd::agent {
namespace {

Sample make_sample(std::string name, Kind kind, double value) {
  Sample s;
  s.name = std::move(name);
  s.kind = kind;
  s.value = value;
  return s;
}

std::vector<SourceSamples> mixed_sources() {
  std::vector<SourceSamples> out;
  for (int f = 0; f < 40; ++f) {
    SourceSamples src;
    src.id = {"h1", f % 3 ? "web" : "w\"x", f % 4 ? 100 + f : -1, 0,
              "/tmp/web-" + std::to_string(f) + ".mmstats"};
    src.samples.push_back(make_sample("requests.count", Kind::Counter, f * 1000.0));
    src.samples.push_back(make_sample(f % 2 ? "load" : "load\n\xff", Kind::Gauge, f + 0.25));
    src.samples.push_back(make_sample("nan", f % 5 ? Kind::Gauge : Kind::Counter, NAN));
    Sample text = make_sample("version", Kind::Text, 0);
    text.text = "3.11\t" + std::to_string(f);
    src.samples.push_back(text);
    Sample tagged = make_sample("tagged", Kind::Gauge, -f);
    tagged.tags = {{"k", "v"}};
    src.samples.push_back(tagged);
    src.samples.push_back(make_sample(std::string(f == 7 ? 100'000 : 10, 'n'), Kind::Gauge, 1e300));
    out.push_back(std::move(src));
  }
  return out;
}

// Everything the writer writes to a file, with chunks of `chunk` bytes.
std::string write_through(const std::vector<SourceSamples>& sources, size_t chunk) {
  char path[] = "/tmp/once_line_writer_test_XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  {
    OnceLineWriter w(fd, chunk);
    for (const auto& s : sources) EXPECT_TRUE(static_cast<bool>(w.add(s)));
    EXPECT_TRUE(static_cast<bool>(w.finish()));
  }
  std::string out;
  char buf[65536];
  ::lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  ::unlink(path);
  return out;
}

}  // namespace

TEST(OnceLineWriter, WritesExactlyWhatAppendOnceLinesBuilds) {
  const auto sources = mixed_sources();
  std::string expected;
  for (const auto& s : sources) append_once_lines(expected, s);
  for (size_t chunk : {size_t{1}, size_t{100}, size_t{4096}, size_t{1} << 20})
    EXPECT_EQ(write_through(sources, chunk), expected) << "chunk " << chunk;
}

TEST(OnceLineWriter, WritesNothingForNoSamples) {
  EXPECT_EQ(write_through({}, 4096), "");
}

TEST(OnceLineWriter, ReportsAWriteErrorWithAHint) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  ::signal(SIGPIPE, SIG_IGN);
  OnceLineWriter w(fds[1], 1);
  Status st = w.add(mixed_sources()[0]);
  ASSERT_FALSE(static_cast<bool>(st));
  EXPECT_NE(st.error().message.find("cannot write output"), std::string::npos);
  EXPECT_FALSE(st.error().hint.empty());
  ::close(fds[1]);
}

}  // namespace statherd::agent
