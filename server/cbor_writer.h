// A minimal streaming CBOR (RFC 8949) writer for the engine snapshot: definite-length arrays
// and maps, integers, float64, booleans, null, byte and text strings, appended to a byte
// vector, so the snapshot of a large state is written without building a document in memory
// first. What it writes, nlohmann::json::from_cbor reads back (byte strings as binary).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace statherd::server {

class CborWriter {
 public:
  explicit CborWriter(std::vector<uint8_t>& out) : out_(out) {}

  void array(uint64_t n) { head(4, n); }
  void map(uint64_t n) { head(5, n); }
  void uint(uint64_t v) { head(0, v); }
  void integer(int64_t v) {
    if (v >= 0) head(0, static_cast<uint64_t>(v));
    else head(1, static_cast<uint64_t>(-(v + 1)));
  }
  void boolean(bool v) { out_.push_back(v ? 0xF5 : 0xF4); }
  void null() { out_.push_back(0xF6); }
  void float64(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    out_.push_back(0xFB);
    for (int i = 7; i >= 0; --i) out_.push_back(static_cast<uint8_t>(bits >> (8 * i)));
  }
  void bytes(std::string_view s) { head(2, s.size()); append(s); }
  void text(std::string_view s) { head(3, s.size()); append(s); }
  // An item already encoded (nlohmann::json::to_cbor of a small value).
  void raw(const std::vector<uint8_t>& item) { out_.insert(out_.end(), item.begin(), item.end()); }

 private:
  void head(uint8_t major, uint64_t v) {
    const uint8_t m = static_cast<uint8_t>(major << 5);
    if (v < 24) {
      out_.push_back(static_cast<uint8_t>(m | v));
    } else if (v <= 0xFF) {
      out_.push_back(m | 24);
      out_.push_back(static_cast<uint8_t>(v));
    } else if (v <= 0xFFFF) {
      out_.push_back(m | 25);
      be(v, 2);
    } else if (v <= 0xFFFFFFFFull) {
      out_.push_back(m | 26);
      be(v, 4);
    } else {
      out_.push_back(m | 27);
      be(v, 8);
    }
  }
  void be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void append(std::string_view s) { out_.insert(out_.end(), s.begin(), s.end()); }

  std::vector<uint8_t>& out_;
};

}  // namespace statherd::server
