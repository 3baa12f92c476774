// A minimal streaming CBOR (RFC 8949) writer for the engine snapshot: definite-length arrays
// and maps, integers, float64, booleans, null, byte and text strings, appended to a byte
// vector, so the snapshot of a large state is written without building a document in memory
// first. What it writes, nlohmann::json::from_cbor reads back (byte strings as binary).
//
// Speed: the snapshot of a large fleet is hundreds of MB written item by item, so the writer
// grows the vector geometrically and writes through a pointer; the vector holds the bytes
// written (and only those) after finish() or the writer's destruction. With a spill function
// the vector is handed to it (and emptied) whenever it holds spill_bytes, so a large document
// streams out through a small buffer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

namespace statherd::server {

class CborWriter {
 public:
  using Spill = std::function<void(std::span<const uint8_t>)>;
  explicit CborWriter(std::vector<uint8_t>& out, Spill spill = {}, size_t spill_bytes = 4 << 20)
      : out_(out), used_(out.size()), spill_(std::move(spill)), spill_bytes_(spill_bytes) {}
  ~CborWriter() { finish(); }
  CborWriter(const CborWriter&) = delete;
  CborWriter& operator=(const CborWriter&) = delete;

  void array(uint64_t n) { head(4, n); }
  void map(uint64_t n) { head(5, n); }
  void uint(uint64_t v) { head(0, v); }
  void integer(int64_t v) {
    if (v >= 0) head(0, static_cast<uint64_t>(v));
    else head(1, static_cast<uint64_t>(-(v + 1)));
  }
  void boolean(bool v) { *room(1) = v ? 0xF5 : 0xF4; }
  void null() { *room(1) = 0xF6; }
  void float64(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    uint8_t* p = room(9);
    *p = 0xFB;
    be(p + 1, bits, 8);
  }
  void bytes(std::string_view s) { head(2, s.size()); append(s.data(), s.size()); }
  void text(std::string_view s) { head(3, s.size()); append(s.data(), s.size()); }
  // An item already encoded (nlohmann::json::to_cbor of a small value).
  void raw(const std::vector<uint8_t>& item) { append(item.data(), item.size()); }

  // Cuts the vector to the bytes written; later writes append after them.
  void finish() { out_.resize(used_); }

 private:
  // n writable bytes at the end; used_ advances past them.
  uint8_t* room(size_t n) {
    if (spill_ && used_ >= spill_bytes_) {
      spill_(std::span<const uint8_t>(out_.data(), used_));
      used_ = 0;
    }
    if (out_.size() - used_ < n)  // grows into the reserved capacity first
      out_.resize(std::max({out_.size() * 2, used_ + n + 4096, out_.capacity()}));
    uint8_t* p = out_.data() + used_;
    used_ += n;
    return p;
  }
  void head(uint8_t major, uint64_t v) {
    const uint8_t m = static_cast<uint8_t>(major << 5);
    if (v < 24) {
      *room(1) = static_cast<uint8_t>(m | v);
      return;
    }
    const int n = v <= 0xFF ? 1 : v <= 0xFFFF ? 2 : v <= 0xFFFFFFFFull ? 4 : 8;
    uint8_t* p = room(1 + static_cast<size_t>(n));
    *p = static_cast<uint8_t>(m | (n == 1 ? 24 : n == 2 ? 25 : n == 4 ? 26 : 27));
    be(p + 1, v, n);
  }
  static void be(uint8_t* p, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * (n - 1 - i)));
  }
  void append(const void* data, size_t n) {
    if (n > 0) std::memcpy(room(n), data, n);
  }

  std::vector<uint8_t>& out_;
  size_t used_;  // bytes written; out_.size() beyond is spare room until finish()
  Spill spill_;
  size_t spill_bytes_;
};

}  // namespace statherd::server
