// A growable array of T in fixed blocks of 2^kShift elements: appending never moves what is
// there. A std::vector of 400k engine slots (~100 bytes each) moved every element at each
// doubling, and every move wrote fresh pages (page faults cost ~1/4 of the CPU of a fleet's
// first interval, issue #10). Elements are reached by index (ids), as a vector's; references
// stay valid until clear().
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace statherd::server {

template <class T, unsigned kShift = 12>
class BlockVector {
 public:
  static constexpr size_t kBlock = size_t{1} << kShift;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  T& operator[](size_t i) { return blocks_[i >> kShift][i & (kBlock - 1)]; }
  const T& operator[](size_t i) const { return blocks_[i >> kShift][i & (kBlock - 1)]; }
  T& back() { return (*this)[size_ - 1]; }

  // Appends a value-initialised T (a block is allocated, its elements constructed, only when
  // the last one is full).
  T& emplace_back() {
    if ((size_ >> kShift) == blocks_.size()) blocks_.push_back(std::make_unique<T[]>(kBlock));
    return (*this)[size_++];
  }
  void push_back(T&& value) { emplace_back() = std::move(value); }

  BlockVector() = default;
  BlockVector(BlockVector&& o) noexcept
      : blocks_(std::move(o.blocks_)), size_(std::exchange(o.size_, 0)) {}
  BlockVector& operator=(BlockVector&& o) noexcept {
    blocks_ = std::move(o.blocks_);
    size_ = std::exchange(o.size_, 0);
    return *this;
  }

  // Keeps the first n elements (nothing changes when n >= size()): the others become
  // value-initialised again and the blocks past the last kept one are freed.
  void truncate(size_t n) {
    if (n >= size_) return;
    const size_t kept_blocks = (n + kBlock - 1) >> kShift;
    // Only the kept last block's tail is reset: the blocks after it are freed whole.
    for (size_t i = n; i < std::min(size_, kept_blocks << kShift); ++i) (*this)[i] = T{};
    blocks_.resize(kept_blocks);
    blocks_.shrink_to_fit();
    size_ = n;
  }
  // Elements the blocks hold (what the array costs: size() rounded up to a block).
  size_t capacity() const { return blocks_.size() * kBlock; }

  void clear() {
    blocks_.clear();
    size_ = 0;
  }

  // Calls fn(element) for every element in index order.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (size_t i = 0; i < size_; ++i) fn((*this)[i]);
  }
  template <class Fn>
  void for_each(Fn&& fn) {
    for (size_t i = 0; i < size_; ++i) fn((*this)[i]);
  }

 private:
  std::vector<std::unique_ptr<T[]>> blocks_;
  size_t size_ = 0;
};

}  // namespace statherd::server
