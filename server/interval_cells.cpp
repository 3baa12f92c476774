#include "server/interval_cells.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace statherd::server {

namespace {

enum Form : uint8_t { kInteger = 0, kFloat = 1, kDouble = 2 };

void put_varint(std::vector<uint8_t>& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

void put_le(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

uint64_t zigzag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t unzigzag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

Form form_of(double v) {
  // Integral, exactly an int64 and not -0.0 (whose sign a varint loses).
  if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 9.0e15 && !(v == 0 && std::signbit(v)))
    return kInteger;
  if (std::isfinite(v) && static_cast<double>(static_cast<float>(v)) == v) return kFloat;
  return kDouble;  // NaN and infinities too
}

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const uint8_t b = byte();
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    throw std::runtime_error("packed interval cells: a varint longer than 10 bytes");
  }
  uint64_t le(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(byte()) << (8 * i);
    return v;
  }
  bool done() const { return at_ == in_.size(); }

 private:
  uint8_t byte() {
    if (at_ >= in_.size()) throw std::runtime_error("packed interval cells: truncated");
    return in_[at_++];
  }
  std::span<const uint8_t> in_;
  size_t at_ = 0;
};

}  // namespace

std::vector<uint8_t> pack_cells(std::span<const Cell> cells) {
  std::vector<uint8_t> out;
  out.reserve(cells.size() * 4 + 8);
  put_varint(out, cells.size());
  int64_t previous = 0;
  for (const Cell& c : cells) {
    const Form form = form_of(c.value);
    const bool has_dist = c.dist != kNone;
    put_varint(out, zigzag(static_cast<int64_t>(c.slot) - previous) << 3 |
                        static_cast<uint64_t>(has_dist) << 2 | form);
    previous = c.slot;
    if (form == kInteger) {
      put_varint(out, zigzag(static_cast<int64_t>(c.value)));
    } else if (form == kFloat) {
      const float f = static_cast<float>(c.value);
      uint32_t bits;
      std::memcpy(&bits, &f, sizeof bits);
      put_le(out, bits, 4);
    } else {
      uint64_t bits;
      std::memcpy(&bits, &c.value, sizeof bits);
      put_le(out, bits, 8);
    }
    if (has_dist) put_varint(out, c.dist);
  }
  out.shrink_to_fit();
  return out;
}

std::vector<Cell> unpack_cells(std::span<const uint8_t> packed) {
  Reader r(packed);
  const uint64_t n = r.varint();
  if (n > packed.size()) throw std::runtime_error("packed interval cells: count beyond the bytes");
  std::vector<Cell> cells;
  cells.reserve(n);
  int64_t previous = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t head = r.varint();
    const int64_t slot = previous + unzigzag(head >> 3);
    if (slot < 0 || slot >= static_cast<int64_t>(kNone))
      throw std::runtime_error("packed interval cells: a slot out of range");
    previous = slot;
    Cell c{static_cast<uint32_t>(slot)};
    switch (head & 3) {
      case kInteger: c.value = static_cast<double>(unzigzag(r.varint())); break;
      case kFloat: {
        const uint32_t bits = static_cast<uint32_t>(r.le(4));
        float f;
        std::memcpy(&f, &bits, sizeof f);
        c.value = f;
        break;
      }
      case kDouble: {
        const uint64_t bits = r.le(8);
        std::memcpy(&c.value, &bits, sizeof bits);
        break;
      }
      default: throw std::runtime_error("packed interval cells: an unknown value form");
    }
    if (head & 4) {
      const uint64_t dist = r.varint();
      if (dist >= kNone) throw std::runtime_error("packed interval cells: a dist index out of range");
      c.dist = static_cast<uint32_t>(dist);
    }
    cells.push_back(c);
  }
  if (!r.done()) throw std::runtime_error("packed interval cells: bytes after the last cell");
  return cells;
}

}  // namespace statherd::server
