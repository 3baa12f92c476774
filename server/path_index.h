// The memory store's paths, compact: every path's bytes in 64 KiB arena blocks (no
// std::string or map node per path), an open-addressing hash of 32-bit ids for the lookups of
// emit, and the ids sorted by path for the prefix scans of /metrics/find and /render. About
// 25 bytes per path plus the path's own bytes (a std::map<std::string, ...> node with its
// string took ~100 plus the bytes).
// Each hash slot has a one-byte tag (8 bits of the path's hash, 0 = empty) beside it, so a
// probe reads a path's bytes only on a tag match: a fleet's first interval looks up hundreds
// of thousands of absent paths, whose probes (up to ~8 at the 3/4 load) each cost two cache
// misses and a memcmp without the tags (issue #10: the path index was ~11 % of that
// interval's CPU).
// Ids are dense, 0..size()-1, in insertion order; compact() keeps the survivors' order, so a
// caller keeping a parallel vector compacts it the same way.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "server/block_vector.h"

namespace statherd::server {

class PathIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  uint32_t find(std::string_view path) const;  // kNone if absent
  // Adds an absent path; its id is size() before the call. It joins the sorted order at the
  // next commit().
  uint32_t insert(std::string_view path);
  // Merges the ids inserted since the last commit into the sorted order.
  void commit();
  // Keeps the ids with keep[id] (renumbered 0.. in order); rebuilds the hash and the arena.
  void compact(const std::vector<bool>& keep);

  std::string_view path(uint32_t id) const {
    const Ref& r = refs_[id];
    return {blocks_[r.block].get() + r.offset, r.length};
  }
  size_t size() const { return refs_.size(); }
  // Committed ids in path order, and the position of the first path >= prefix in it.
  const std::vector<uint32_t>& sorted() const { return sorted_; }
  size_t lower_bound(std::string_view prefix) const;
  size_t memory_bytes() const;

 private:
  struct Ref {
    uint32_t block, offset, length;
  };
  static constexpr uint32_t kBlockBytes = 64 * 1024;

  Ref store_bytes(std::string_view path);
  void rehash(size_t slots);
  void place(uint32_t id, size_t hash);

  std::vector<std::unique_ptr<char[]>> blocks_;
  uint32_t block_used_ = kBlockBytes;  // bytes used in blocks_.back()
  BlockVector<Ref, 12> refs_;  // blocks: a vector's doubling left up to half unused
  std::vector<uint32_t> slots_;  // hash table of ids; size a power of two
  std::vector<uint8_t> tags_;    // per slot: tag_of(the id's hash), 0 where the slot is empty
  std::vector<uint32_t> sorted_, pending_;
  size_t arena_bytes_ = 0;
};

}  // namespace statherd::server
