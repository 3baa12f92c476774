// `statherd-agent --once` output: one JSON object per sample, one per line, written by hand
// into one buffer (100,000 lines must cost a few milliseconds, so no JSON library here).
//
//   {"source":PATH,"app":STR,"pid":INT|null,"name":STR,"kind":"counter"|"gauge"|"distribution"|
//    "text","value":NUMBER|STRING|OBJECT|null,"tags":{"k":"v",...}}
//
// Numbers: a double that is integral and |v| < 2^53 prints as an integer ("3", not "3.0");
// anything else prints as the shortest text that round-trips (std::to_chars); NaN and ±Inf
// print as null (JSON has no spelling for them).
// Strings: '"', '\\' and control bytes are escaped (\n \t \r \b \f, others as \u00XX); valid
// UTF-8 passes through unchanged; every byte that is not part of a valid UTF-8 sequence is
// escaped as \u00XX of that byte (i.e. read as Latin-1), so the output is always valid UTF-8
// JSON and no byte of the original is lost.
// Distribution lines carry "cumulative":true before "value": a read holds every observation
// since the process started (the server's interval stats are differences between reads).
// Distribution values are objects:
//   sketch:  {"count","sum","min","max","p50","p90","p99"}   (min/max/pNN null when empty)
//   buckets: {"count","sum","buckets":[[upper_bound,count],...]} (+Inf bound as "+Inf")
//   summary: {"count","sum","min","max","quantiles":{"0.5":v,...}}
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/sample.h"

namespace statherd::agent {

void append_json_string(std::string& out, std::string_view s);
void append_json_number(std::string& out, double v);

// Appends one line per sample of `source`. The per-source prefix is built once.
void append_once_lines(std::string& out, const SourceSamples& source);

// write(2) until everything is out (EINTR/partial writes handled).
Status write_fully(int fd, std::string_view data);

// Streams --once lines to fd: lines collect in one buffer that is written whenever it holds
// chunk_bytes, so memory stays flat however many files there are. If fd is a pipe, its
// capacity is raised towards chunk_bytes (fewer reader/writer switches; failure is harmless).
class OnceLineWriter {
 public:
  explicit OnceLineWriter(int fd, size_t chunk_bytes = size_t{1} << 20);
  // Appends the lines of `source`; writes a chunk when the buffer is full.
  Status add(const SourceSamples& source);
  // Writes what is left.
  Status finish();

 private:
  static constexpr size_t kLineRoom = 64 * 1024;  // room past chunk_bytes for the last lines
  struct FieldHead {
    std::string name;
    Kind kind = Kind::Gauge;
    std::string text;
  };
  std::string_view head_of(size_t i, const Sample& s);
  Status put(std::string_view bytes);
  Status flush();

  int fd_;
  size_t chunk_bytes_;
  std::unique_ptr<char[]> buffer_;  // [0, used_) holds lines not yet written
  size_t size_ = 0;
  size_t used_ = 0;
  std::string prefix_, line_;
  std::vector<FieldHead> heads_;  // by sample index: files of one app repeat their names
};

}  // namespace statherd::agent
