// What a sink derives from a series once (a path, store ids, ...), kept under SeriesKey::id
// (server/rollup_record.h: an id is never reused, so an entry never describes another series).
// Bounded: an entry whose key was not seen in the last kIdleEmits emits is dropped by a sweep
// that runs every kSweepEvery emits (not a scan of every entry every interval). Entries stay
// at one address until dropped. Not thread-safe: one sink's emit thread.
#pragma once

#include <cstdint>
#include <unordered_map>

namespace statherd::server {

template <class Entry>
class SeriesCache {
 public:
  static constexpr uint64_t kIdleEmits = 16;
  static constexpr uint64_t kSweepEvery = 8;

  void begin_emit() { ++emit_; }
  // The entry of key `id`, value-initialized the first time (then `made` is true); marks it seen.
  Entry& get(uint64_t id, bool& made) {
    auto [it, inserted] = entries_.try_emplace(id);
    it->second.last_seen = emit_;
    made = inserted;
    return it->second.entry;
  }
  // Ends an emit; every kSweepEvery emits, drops the idle entries, on_drop(entry) first.
  template <class Fn>
  void end_emit(Fn&& on_drop) {
    if (emit_ % kSweepEvery != 0) return;
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (emit_ - it->second.last_seen < kIdleEmits) {
        ++it;
        continue;
      }
      on_drop(it->second.entry);
      it = entries_.erase(it);
    }
  }
  template <class Fn>
  void clear(Fn&& on_drop) {
    for (auto& [id, slot] : entries_) on_drop(slot.entry);
    entries_.clear();
  }
  template <class Fn>
  void for_each(Fn&& fn) {
    for (auto& [id, slot] : entries_) fn(slot.entry);
  }
  size_t size() const { return entries_.size(); }

 private:
  struct Slot {
    Entry entry{};
    uint64_t last_seen = 0;
  };
  std::unordered_map<uint64_t, Slot> entries_;
  uint64_t emit_ = 0;
};

}  // namespace statherd::server
