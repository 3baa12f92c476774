#include "server/path_index.h"

#include <algorithm>
#include <cstring>
#include <functional>

namespace statherd::server {

namespace {

size_t hash_of(std::string_view s) { return std::hash<std::string_view>{}(s); }

// The slot comes from the hash's low bits, the tag from its top byte (1..255: 0 marks empty).
uint8_t tag_of(size_t hash) {
  const auto top = static_cast<uint8_t>(hash >> (8 * sizeof(size_t) - 8));
  return top != 0 ? top : 1;
}

// Sort keys for commit(): 8 bytes of the path from `skip` on (the prefix every pending path
// shares), big-endian so that comparing the integers compares those bytes, zero past the end
// (a path sorts before its extensions); equal keys fall back to the bytes after them.
struct SortItem {
  uint64_t key;
  std::string_view path;
  uint32_t id;
};

uint64_t sort_key(std::string_view path, size_t skip) {
  uint64_t key = 0;
  for (size_t i = 0; i < 8; ++i) {
    const size_t at = skip + i;
    key = (key << 8) | (at < path.size() ? static_cast<unsigned char>(path[at]) : 0u);
  }
  return key;
}

}  // namespace

uint32_t PathIndex::find(std::string_view path) const {
  if (slots_.empty()) return kNone;
  const size_t mask = slots_.size() - 1;
  const size_t h = hash_of(path);
  const uint8_t tag = tag_of(h);
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    if (tags_[i] == 0) return kNone;
    if (tags_[i] == tag && this->path(slots_[i]) == path) return slots_[i];
  }
}

PathIndex::Ref PathIndex::store_bytes(std::string_view path) {
  const uint32_t length = static_cast<uint32_t>(path.size());
  if (length > kBlockBytes) {  // a block of its own; the next path starts a fresh one
    blocks_.push_back(std::make_unique<char[]>(length));
    std::memcpy(blocks_.back().get(), path.data(), length);
    arena_bytes_ += length;
    block_used_ = kBlockBytes;
    return {static_cast<uint32_t>(blocks_.size() - 1), 0, length};
  }
  if (blocks_.empty() || block_used_ + length > kBlockBytes) {
    blocks_.push_back(std::make_unique<char[]>(kBlockBytes));
    arena_bytes_ += kBlockBytes;
    block_used_ = 0;
  }
  Ref r{static_cast<uint32_t>(blocks_.size() - 1), block_used_, length};
  std::memcpy(blocks_.back().get() + block_used_, path.data(), length);
  block_used_ += length;
  return r;
}

void PathIndex::place(uint32_t id, size_t hash) {
  const size_t mask = slots_.size() - 1;
  size_t i = hash & mask;
  while (tags_[i] != 0) i = (i + 1) & mask;
  slots_[i] = id;
  tags_[i] = tag_of(hash);
}

void PathIndex::rehash(size_t slots) {
  slots_.assign(slots, kNone);
  tags_.assign(slots, 0);
  for (uint32_t id = 0; id < refs_.size(); ++id) place(id, hash_of(path(id)));
}

uint32_t PathIndex::insert(std::string_view path) {
  const uint32_t id = static_cast<uint32_t>(refs_.size());
  refs_.push_back(store_bytes(path));
  // Load factor at most 3/4.
  if ((refs_.size()) * 4 > slots_.size() * 3) rehash(std::max<size_t>(16, slots_.size() * 2));
  else place(id, hash_of(path));
  pending_.push_back(id);
  return id;
}

void PathIndex::commit() {
  if (pending_.empty()) return;
  // The pending paths sorted on their own: by 8-byte keys past their common prefix (one
  // integer compare for most pairs; comparing the paths through their ids cost two lookups
  // and a memcmp each, ~4 % of a fleet's first interval), the bytes only where keys tie.
  std::string_view first = path(pending_.front());
  size_t skip = first.size();
  for (uint32_t id : pending_) {
    const std::string_view p = path(id);
    size_t n = 0;
    const size_t limit = std::min(skip, p.size());
    while (n < limit && p[n] == first[n]) ++n;
    skip = n;
  }
  std::vector<SortItem> items;
  items.reserve(pending_.size());
  for (uint32_t id : pending_) {
    const std::string_view p = path(id);
    items.push_back({sort_key(p, skip), p, id});
  }
  std::sort(items.begin(), items.end(), [skip](const SortItem& a, const SortItem& b) {
    if (a.key != b.key) return a.key < b.key;
    return a.path.substr(skip) < b.path.substr(skip);  // every path is at least `skip` long
  });
  // Merged into the sorted ids: a few pending paths among many find their places by binary
  // search (O(k log n) path compares, not O(n)); else one linear merge.
  std::vector<uint32_t> merged;
  merged.reserve(sorted_.size() + items.size());
  auto from = sorted_.begin();
  const bool few = items.size() * 32 < sorted_.size();
  for (const SortItem& item : items) {
    auto to = from;
    if (few)
      to = std::upper_bound(from, sorted_.end(), item.path,
                            [this](std::string_view p, uint32_t id) { return p < path(id); });
    else
      while (to != sorted_.end() && path(*to) < item.path) ++to;
    merged.insert(merged.end(), from, to);
    merged.push_back(item.id);
    from = to;
  }
  merged.insert(merged.end(), from, sorted_.end());
  sorted_ = std::move(merged);
  pending_.clear();
  pending_.shrink_to_fit();
}

void PathIndex::compact(const std::vector<bool>& keep) {
  commit();
  std::vector<uint32_t> renumber(refs_.size(), kNone);
  PathIndex next;
  for (uint32_t id = 0; id < refs_.size(); ++id) {
    if (!keep[id]) continue;
    renumber[id] = static_cast<uint32_t>(next.refs_.size());
    next.refs_.push_back(next.store_bytes(path(id)));
  }
  for (uint32_t id : sorted_)
    if (renumber[id] != kNone) next.sorted_.push_back(renumber[id]);
  size_t slots = 16;
  while (next.refs_.size() * 4 > slots * 3) slots *= 2;
  next.rehash(slots);
  *this = std::move(next);
}

size_t PathIndex::lower_bound(std::string_view prefix) const {
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), prefix,
                             [this](uint32_t id, std::string_view p) { return path(id) < p; });
  return static_cast<size_t>(it - sorted_.begin());
}

size_t PathIndex::memory_bytes() const {
  return arena_bytes_ + blocks_.capacity() * sizeof(blocks_[0]) + refs_.capacity() * sizeof(Ref) +
         (slots_.capacity() + sorted_.capacity() + pending_.capacity()) * sizeof(uint32_t) +
         tags_.capacity();
}

}  // namespace statherd::server
