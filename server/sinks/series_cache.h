// What a sink derives from a series once (a path, store ids, ...), kept under SeriesKey::id
// (server/rollup_record.h: an id is never reused, so an entry never describes another series).
// Bounded: an entry whose key was not seen in the last kIdleEmits emits is dropped by a sweep
// that runs every kSweepEvery emits (not a scan of every entry every interval). Entries stay
// at one address until dropped. Not thread-safe: one sink's emit thread.
#pragma once

#include <cassert>
#include <cstdint>
#include <memory>
#include <vector>

namespace statherd::server {

// Entries live in blocks of kBlock (never moved); a power-of-two open-addressing table of their
// slot numbers (4 bytes each; linear probing, Fibonacci hashing of the id) finds them. A lookup
// touches a table line and the entry's own: a std::unordered_map took a modulo by a prime and
// a node chase per lookup, a visible share of every emit at 400k series.
template <class Entry>
class SeriesCache {
 public:
  static constexpr uint64_t kIdleEmits = 16;
  static constexpr uint64_t kSweepEvery = 8;

  void begin_emit() {
    ++emit_;
    next_ = 0;
  }
  // The entry of key `id` (never 0), value-initialized the first time (then `made` is true);
  // marks it seen.
  // An emit asks for the series in the order of the last one, and entries are made in that
  // order: the entry after the last one returned is tried first (sequential memory, no table
  // line touched); anything else is the table lookup.
  Entry& get(uint64_t id, bool& made) {
    assert(id != 0);  // 0 marks a free slot (SeriesKey ids start at 1)
    made = false;
    if (next_ < used_) {
      Slot& s = slot(next_);
      if (s.id == id) {
        s.last_seen = emit_;
        ++next_;
        return s.entry;
      }
    }
    if ((size_ + 1) * 4 > table_.size() * 3) grow();
    size_t i = home(id);
    for (; table_[i] != kEmpty; i = (i + 1) & mask_) {
      Slot& s = slot(table_[i]);
      if (s.id == id) {
        s.last_seen = emit_;
        next_ = table_[i] + 1;
        return s.entry;
      }
    }
    const uint32_t at = take_slot();
    table_[i] = at;
    ++size_;
    Slot& s = slot(at);
    s.id = id;
    s.last_seen = emit_;
    made = true;
    next_ = at + 1;
    return s.entry;
  }
  // The entry of key `id`, or nullptr; does not mark it seen.
  Entry* find(uint64_t id) {
    if (table_.empty()) return nullptr;
    for (size_t i = home(id); table_[i] != kEmpty; i = (i + 1) & mask_)
      if (slot(table_[i]).id == id) return &slot(table_[i]).entry;
    return nullptr;
  }
  // Drops the entry of key `id` if there is one (for a sink that expires entries itself).
  void erase(uint64_t id) {
    if (table_.empty()) return;
    for (size_t i = home(id); table_[i] != kEmpty; i = (i + 1) & mask_)
      if (slot(table_[i]).id == id) return drop(id, table_[i]);
  }
  // Ends an emit; every kSweepEvery emits, drops the idle entries, on_drop(entry) first.
  template <class Fn>
  void end_emit(Fn&& on_drop) {
    if (emit_ % kSweepEvery != 0) return;
    for (uint32_t at = 0; at < used_; ++at) {
      Slot& s = slot(at);
      if (s.id == 0 || emit_ - s.last_seen < kIdleEmits) continue;
      on_drop(s.entry);
      drop(s.id, at);
    }
  }
  template <class Fn>
  void clear(Fn&& on_drop) {
    for_each(on_drop);
    blocks_.clear();
    free_.clear();
    table_.clear();
    mask_ = 0;
    size_ = 0;
    used_ = 0;
    next_ = 0;
  }
  template <class Fn>
  void for_each(Fn&& fn) {
    for (uint32_t at = 0; at < used_; ++at)
      if (slot(at).id != 0) fn(slot(at).entry);
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint32_t kBlock = 1024;
  struct Slot {
    Entry entry{};
    uint64_t last_seen = 0;
    uint64_t id = 0;  // 0: free
  };
  static constexpr uint32_t kEmpty = UINT32_MAX;  // the table holds slot numbers

  Slot& slot(uint32_t at) { return blocks_[at / kBlock][at % kBlock]; }
  size_t home(uint64_t id) const {
    return static_cast<size_t>((id * 0x9E3779B97F4A7C15ull) >> 32) & mask_;
  }
  uint32_t take_slot() {
    if (!free_.empty()) {
      const uint32_t at = free_.back();
      free_.pop_back();
      return at;
    }
    if (used_ % kBlock == 0) blocks_.push_back(std::make_unique<Slot[]>(kBlock));
    return used_++;
  }
  void drop(uint64_t id, uint32_t at) {
    size_t i = home(id);
    while (table_[i] != at) i = (i + 1) & mask_;
    // Backward shift: a later entry of the run moves up unless its home is inside (i, j].
    for (size_t j = (i + 1) & mask_; table_[j] != kEmpty; j = (j + 1) & mask_) {
      const size_t h = home(slot(table_[j]).id);
      if (((j - h) & mask_) >= ((j - i) & mask_)) {
        table_[i] = table_[j];
        i = j;
      }
    }
    table_[i] = kEmpty;
    --size_;
    slot(at) = Slot{};
    free_.push_back(at);
  }
  void grow() {
    std::vector<uint32_t> old = std::move(table_);
    const size_t n = old.empty() ? 64 : old.size() * 2;
    table_.assign(n, kEmpty);
    mask_ = n - 1;
    for (uint32_t at : old) {
      if (at == kEmpty) continue;
      size_t i = home(slot(at).id);
      while (table_[i] != kEmpty) i = (i + 1) & mask_;
      table_[i] = at;
    }
  }

  std::vector<std::unique_ptr<Slot[]>> blocks_;
  std::vector<uint32_t> free_;
  uint32_t used_ = 0;  // slots handed out (free ones included)
  uint32_t next_ = 0;  // the slot after the one get() returned last
  std::vector<uint32_t> table_;
  size_t mask_ = 0;
  size_t size_ = 0;
  uint64_t emit_ = 0;
};

}  // namespace statherd::server
