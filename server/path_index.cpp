#include "server/path_index.h"

#include <algorithm>
#include <cstring>
#include <functional>

namespace statherd::server {

namespace {

size_t hash_of(std::string_view s) { return std::hash<std::string_view>{}(s); }

}  // namespace

uint32_t PathIndex::find(std::string_view path) const {
  if (slots_.empty()) return kNone;
  const size_t mask = slots_.size() - 1;
  for (size_t i = hash_of(path) & mask;; i = (i + 1) & mask) {
    const uint32_t id = slots_[i];
    if (id == kNone) return kNone;
    if (this->path(id) == path) return id;
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

void PathIndex::place(uint32_t id) {
  const size_t mask = slots_.size() - 1;
  size_t i = hash_of(path(id)) & mask;
  while (slots_[i] != kNone) i = (i + 1) & mask;
  slots_[i] = id;
}

void PathIndex::rehash(size_t slots) {
  slots_.assign(slots, kNone);
  for (uint32_t id = 0; id < refs_.size(); ++id) place(id);
}

uint32_t PathIndex::insert(std::string_view path) {
  const uint32_t id = static_cast<uint32_t>(refs_.size());
  refs_.push_back(store_bytes(path));
  // Load factor at most 3/4.
  if ((refs_.size()) * 4 > slots_.size() * 3) rehash(std::max<size_t>(16, slots_.size() * 2));
  else place(id);
  pending_.push_back(id);
  return id;
}

void PathIndex::commit() {
  if (pending_.empty()) return;
  auto less = [this](uint32_t a, uint32_t b) { return path(a) < path(b); };
  std::sort(pending_.begin(), pending_.end(), less);
  const size_t old = sorted_.size();
  sorted_.insert(sorted_.end(), pending_.begin(), pending_.end());
  std::inplace_merge(sorted_.begin(), sorted_.begin() + static_cast<std::ptrdiff_t>(old),
                     sorted_.end(), less);
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
         (slots_.capacity() + sorted_.capacity() + pending_.capacity()) * sizeof(uint32_t);
}

}  // namespace statherd::server
