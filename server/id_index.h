// A hash index of 32-bit ids whose keys live in the records they name (a Slot's or an
// Aggregate's key): open addressing with linear probing, each entry the id and its key's hash,
// so a lookup compares a key only on a full hash match and growing never reads a key. About 8
// to 16 bytes an id; the std::unordered_map<std::string, uint32_t> it replaces took a node and
// a second copy of every key (~110 bytes with the key's heap block).
// Erase shifts the following entries back (no tombstones), so lookups stay short however many
// ids come and go.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace statherd::server {

class IdIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // The id whose key (key_of(id), a string_view) is `key`, or kNone.
  template <class KeyOf>
  uint32_t find(std::string_view key, const KeyOf& key_of) const {
    if (entries_.empty()) return kNone;
    const uint32_t h = hash(key);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Entry& e = entries_[i];
      if (e.id == kNone) return kNone;
      if (e.hash == h && key_of(e.id) == key) return e.id;
    }
  }

  // Adds id under key; the caller knows key is absent.
  void insert(std::string_view key, uint32_t id) {
    if ((size_ + 1) * 4 > entries_.size() * 3) grow();
    place({id, hash(key)});
    ++size_;
  }

  // Removes the id under key; false when there is none.
  template <class KeyOf>
  bool erase(std::string_view key, const KeyOf& key_of) {
    if (entries_.empty()) return false;
    const uint32_t h = hash(key);
    size_t i = h & mask_;
    for (;; i = (i + 1) & mask_) {
      const Entry& e = entries_[i];
      if (e.id == kNone) return false;
      if (e.hash == h && key_of(e.id) == key) break;
    }
    // Backward shift: move up every later entry of the run that may sit at i (its home is not
    // cyclically inside (i, j]).
    for (size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
      const Entry& e = entries_[j];
      if (e.id == kNone) break;
      const size_t home = e.hash & mask_;
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        entries_[i] = e;
        i = j;
      }
    }
    entries_[i] = Entry{};
    --size_;
    return true;
  }

  void clear() {
    entries_.clear();
    mask_ = 0;
    size_ = 0;
  }
  size_t size() const { return size_; }
  size_t memory_bytes() const { return entries_.capacity() * sizeof(Entry); }

 private:
  struct Entry {
    uint32_t id = kNone;
    uint32_t hash = 0;
  };

  static uint32_t hash(std::string_view key) {
    const uint64_t h = std::hash<std::string_view>{}(key);
    return static_cast<uint32_t>(h ^ (h >> 32));
  }

  void place(Entry e) {
    size_t i = e.hash & mask_;
    while (entries_[i].id != kNone) i = (i + 1) & mask_;
    entries_[i] = e;
  }

  void grow() {
    std::vector<Entry> old = std::move(entries_);
    const size_t n = old.empty() ? 64 : old.size() * 2;
    entries_.assign(n, Entry{});
    mask_ = n - 1;
    for (const Entry& e : old)
      if (e.id != kNone) place(e);
  }

  std::vector<Entry> entries_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace statherd::server
