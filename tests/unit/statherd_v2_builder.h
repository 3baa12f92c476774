// Builds statherd v2 files by hand, byte by byte as docs/FORMAT.md specifies, for the tests of
// agent/sources/statherd_v2*. Storage is 8-byte aligned like a real mapping.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "common/sketch.h"

namespace statherd::agent::testing {

class V2FileBuilder {
 public:
  V2FileBuilder(uint64_t pid, uint64_t start_ms, const std::string& app) {
    words_.assign(32, 0);
    std::memcpy(bytes(), "STHRDv2\0", 8);
    put32(8, 2);
    put32(12, 256);
    put64(16, pid);
    put64(24, start_ms);
    put64(32, start_ms);
    put64(40, 256);
    put16(56, static_cast<uint16_t>(app.size()));
    std::memcpy(bytes() + 58, app.data(), app.size());
  }

  // Each add_* appends a complete record (seq 0) and returns its offset; `used` is advanced
  // unless publish = false (a record the writer has not published yet).
  size_t add_number(uint8_t kind, const std::string& name, const std::vector<std::pair<std::string, std::string>>& tags,
                    double value, bool publish = true) {
    std::vector<uint8_t> area(8);
    std::memcpy(area.data(), &value, 8);
    return add_record(kind, name, tags, area, publish);
  }
  size_t add_text(const std::string& name, const std::string& text, uint32_t capacity = 64) {
    std::vector<uint8_t> area(8 + round8(capacity));
    const uint32_t len = static_cast<uint32_t>(text.size());
    std::memcpy(area.data(), &capacity, 4);
    std::memcpy(area.data() + 4, &len, 4);
    std::memcpy(area.data() + 8, text.data(), text.size());
    return add_record(4, name, {}, area, true);
  }
  // A histogram of `values` with buckets [lo_index, hi_index] (values outside go to the ends).
  size_t add_histogram(const std::string& name, const std::vector<std::pair<std::string, std::string>>& tags,
                       const std::vector<double>& values, int32_t lo_index = -700, int32_t hi_index = 700) {
    const Sketch index_helper;
    std::vector<double> counts(static_cast<size_t>(hi_index - lo_index + 1), 0.0);
    double count = 0, sum = 0, zero = 0;
    double mn = std::numeric_limits<double>::infinity(), mx = -mn;
    for (double v : values) {
      count += 1;
      sum += v;
      mn = std::min(mn, v);
      mx = std::max(mx, v);
      if (v <= 1e-9) {
        zero += 1;
        continue;
      }
      const int32_t i = std::clamp(index_helper.index_of(v), lo_index, hi_index);
      counts[static_cast<size_t>(i - lo_index)] += 1;
    }
    return add_raw_histogram(name, tags, {count, sum, mn, mx, zero}, lo_index, counts);
  }
  size_t add_raw_histogram(const std::string& name, const std::vector<std::pair<std::string, std::string>>& tags,
                           const std::vector<double>& head5, int32_t offset, const std::vector<double>& counts) {
    std::vector<uint8_t> area(48 + 8 * counts.size());
    std::memcpy(area.data(), head5.data(), 40);
    const uint32_t n = static_cast<uint32_t>(counts.size());
    std::memcpy(area.data() + 40, &offset, 4);
    std::memcpy(area.data() + 44, &n, 4);
    if (n) std::memcpy(area.data() + 48, counts.data(), 8 * counts.size());
    return add_record(3, name, tags, area, true);
  }

  size_t add_record(uint8_t kind, const std::string& name, const std::vector<std::pair<std::string, std::string>>& tags,
                    const std::vector<uint8_t>& area, bool publish) {
    std::string tag_block;
    for (const auto& [k, v] : tags) tag_block += k + '\0' + v + '\0';
    const size_t seq_rel = round8(12 + name.size() + tag_block.size());
    const size_t size = seq_rel + 8 + round8(area.size());
    const size_t offset = end_;
    resize(offset + size);
    put32(offset, static_cast<uint32_t>(size));
    bytes()[offset + 4] = kind;
    put16(offset + 6, static_cast<uint16_t>(name.size()));
    put16(offset + 8, static_cast<uint16_t>(tag_block.size()));
    std::memcpy(bytes() + offset + 12, name.data(), name.size());
    std::memcpy(bytes() + offset + 12 + name.size(), tag_block.data(), tag_block.size());
    std::memcpy(bytes() + offset + seq_rel + 8, area.data(), area.size());
    seq_offsets_.push_back(offset + seq_rel);
    end_ = offset + size;
    if (publish) set_used(end_);
    return offset;
  }

  void set_used(uint64_t used) { put64(40, used); }
  void publish_all() { set_used(end_); }
  size_t end() const { return end_; }
  size_t seq_offset(size_t record_index) const { return seq_offsets_[record_index]; }
  void set_seq(size_t record_index, uint64_t seq) { put64(seq_offsets_[record_index], seq); }
  void set_f64(size_t at, double v) { std::memcpy(bytes() + at, &v, 8); }

  uint8_t* bytes() { return reinterpret_cast<uint8_t*>(words_.data()); }
  size_t size() const { return words_.size() * 8; }
  std::vector<uint8_t> file_bytes(size_t page = 4096) const {
    std::vector<uint8_t> out(reinterpret_cast<const uint8_t*>(words_.data()),
                             reinterpret_cast<const uint8_t*>(words_.data()) + end_);
    out.resize((end_ + page - 1) / page * page, 0);
    return out;
  }

  void put16(size_t at, uint16_t v) { std::memcpy(bytes() + at, &v, 2); }
  void put32(size_t at, uint32_t v) { std::memcpy(bytes() + at, &v, 4); }
  void put64(size_t at, uint64_t v) { std::memcpy(bytes() + at, &v, 8); }

 private:
  static size_t round8(size_t n) { return (n + 7) / 8 * 8; }
  void resize(size_t n) {
    if (words_.size() * 8 < n) words_.resize((n + 7) / 8, 0);
  }
  std::vector<uint64_t> words_;
  size_t end_ = 256;
  std::vector<size_t> seq_offsets_;
};

}  // namespace statherd::agent::testing
