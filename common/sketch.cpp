// DDSketch-style quantile sketch; see sketch.h for the bucket layout (part of the v2 format).
//
// Invariants kept by every operation, so that two sketches of the same multiset of values
// compare equal bucket for bucket whatever the order of adds and merges:
//  - a non-empty store has no leading or trailing zero counts; an empty store has offset 0;
//  - a store spans at most max_buckets indices; a value whose index lies below the lowest
//    allowed index (top - max_buckets + 1) is counted in that lowest bucket ("collapse lowest").
//    The result depends only on the multiset of indices, so merge(A, B) == sketch(A u B).
// NaN and infinite values, and non-positive or non-finite counts, are ignored by add().
#include "common/sketch.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace statherd {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr size_t kInitialReserve = 64;
// Alphas accepted by assign(): keeps every index of a finite double well inside int32.
constexpr double kMinAlpha = 1e-4;
constexpr double kMaxAlpha = 0.5;

double store_total(const Sketch::Store& s) {
  double total = 0;
  for (double c : s.counts) total += c;
  return total;
}

// Drops leading and trailing zero counts (they can only come from assign()).
void trim_store(Sketch::Store& s) {
  auto& v = s.counts;
  size_t first = 0;
  while (first < v.size() && v[first] == 0) ++first;
  if (first == v.size()) {
    v.clear();
    s.offset = 0;
    return;
  }
  size_t last = v.size();
  while (v[last - 1] == 0) --last;
  v.erase(v.begin() + static_cast<std::ptrdiff_t>(last), v.end());
  v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(first));
  s.offset += static_cast<int32_t>(first);
}

bool store_is_valid(const Sketch::Store& s, int max_buckets) {
  if (s.counts.size() > static_cast<size_t>(max_buckets)) return false;
  int64_t top = int64_t{s.offset} + static_cast<int64_t>(s.counts.size()) - 1;
  if (top > std::numeric_limits<int32_t>::max()) return false;
  for (double c : s.counts) {
    if (!std::isfinite(c) || c < 0) return false;
  }
  return true;
}

}  // namespace

Sketch::Sketch(double alpha, int max_buckets)
    : alpha_(alpha),
      gamma_((1 + alpha) / (1 - alpha)),
      ln_gamma_(std::log((1 + alpha) / (1 - alpha))),
      max_buckets_(std::max(max_buckets, 1)),
      min_(kInf),
      max_(-kInf) {}

int32_t Sketch::index_of(double positive_value) const {
  return static_cast<int32_t>(std::ceil(std::log(positive_value) / ln_gamma_));
}

double Sketch::value_of(int32_t index) const {
  return 2.0 * std::exp(static_cast<double>(index) * ln_gamma_) / (gamma_ + 1.0);
}

void Sketch::add(double value, double count) {
  if (!std::isfinite(value) || !std::isfinite(count) || count <= 0) return;
  if (value >= kMinPositive) {
    add_to(pos_, index_of(value), count);
  } else if (value <= -kMinPositive) {
    add_to(neg_, index_of(-value), count);
  } else {
    zero_ += count;
  }
  count_ += count;
  sum_ += value * count;
  if (value < min_) min_ = value;
  if (value > max_) max_ = value;
}

void Sketch::add_to(Store& s, int32_t index, double count) {
  auto& v = s.counts;
  const int64_t size = static_cast<int64_t>(v.size());
  const int64_t k = int64_t{index} - s.offset;
  if (k >= 0 && k < size) {  // the common case: no allocation
    v[static_cast<size_t>(k)] += count;
    return;
  }
  if (size == 0) {
    if (v.capacity() == 0) v.reserve(kInitialReserve);
    s.offset = index;
    v.push_back(count);
    return;
  }
  if (k >= size) {  // above the top: grow at the back (geometric), then collapse if too wide
    if (v.capacity() < static_cast<size_t>(k + 1)) {
      v.reserve(std::max(static_cast<size_t>(k + 1), 2 * v.capacity()));
    }
    v.resize(static_cast<size_t>(k + 1), 0.0);
    v.back() += count;
    collapse(s);
    return;
  }
  // Below the lowest bucket: extend downwards as far as max_buckets allows.
  const int64_t top = int64_t{s.offset} + size - 1;
  const int64_t lowest_allowed = top - max_buckets_ + 1;
  const int64_t new_offset = std::max<int64_t>(index, lowest_allowed);
  const int64_t grow = s.offset - new_offset;
  if (grow > 0) {
    v.insert(v.begin(), static_cast<size_t>(grow), 0.0);
    s.offset = static_cast<int32_t>(new_offset);
  }
  v.front() += count;
}

void Sketch::collapse(Store& s) {
  auto& v = s.counts;
  if (v.size() <= static_cast<size_t>(max_buckets_)) return;
  const size_t fold = v.size() - static_cast<size_t>(max_buckets_);
  double folded = 0;
  for (size_t i = 0; i <= fold; ++i) folded += v[i];
  v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(fold));
  v.front() = folded;
  s.offset += static_cast<int32_t>(fold);
}

namespace {

// Adds src into dst over the union of their index ranges (no collapse here).
void add_store(Sketch::Store& dst, const Sketch::Store& src) {
  if (src.counts.empty()) return;
  if (dst.counts.empty()) {
    dst = src;
    return;
  }
  const int64_t dst_end = int64_t{dst.offset} + static_cast<int64_t>(dst.counts.size());
  const int64_t src_end = int64_t{src.offset} + static_cast<int64_t>(src.counts.size());
  const int64_t lo = std::min<int64_t>(dst.offset, src.offset);
  const int64_t hi = std::max(dst_end, src_end);
  if (lo < dst.offset) {
    dst.counts.insert(dst.counts.begin(), static_cast<size_t>(dst.offset - lo), 0.0);
    dst.offset = static_cast<int32_t>(lo);
  }
  dst.counts.resize(static_cast<size_t>(hi - lo), 0.0);
  const size_t shift = static_cast<size_t>(src.offset - lo);
  for (size_t i = 0; i < src.counts.size(); ++i) dst.counts[shift + i] += src.counts[i];
}

}  // namespace

bool Sketch::merge(const Sketch& other) {
  if (other.alpha_ != alpha_) return false;
  if (other.empty()) return true;
  add_store(pos_, other.pos_);
  add_store(neg_, other.neg_);
  collapse(pos_);
  collapse(neg_);
  zero_ += other.zero_;
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  return true;
}

namespace {

// out = newer - older, bucket by bucket. False when a count would go negative. `newer_full`:
// newer spans max_buckets, so older's counts below its lowest index were collapsed into it.
bool subtract_store(const Sketch::Store& newer, const Sketch::Store& older, bool newer_full,
                    Sketch::Store& out) {
  out = newer;
  if (older.counts.empty()) return true;
  if (newer.counts.empty()) return false;  // trimmed: older holds a non-zero count
  const int64_t newer_end = int64_t{newer.offset} + static_cast<int64_t>(newer.counts.size());
  const int64_t older_end = int64_t{older.offset} + static_cast<int64_t>(older.counts.size());
  if (older_end > newer_end) return false;
  for (size_t i = 0; i < older.counts.size(); ++i) {
    if (older.counts[i] == 0) continue;
    int64_t k = int64_t{older.offset} + static_cast<int64_t>(i) - newer.offset;
    if (k < 0) {
      if (!newer_full) return false;
      k = 0;
    }
    out.counts[static_cast<size_t>(k)] -= older.counts[i];
  }
  for (double& c : out.counts) {
    if (c < 0) return false;
  }
  trim_store(out);
  return true;
}

}  // namespace

bool Sketch::subtract(const Sketch& older) {
  if (older.alpha_ != alpha_) return false;
  if (older.empty()) return true;
  const size_t full = static_cast<size_t>(max_buckets_);
  Store pos, neg;
  if (!subtract_store(pos_, older.pos_, pos_.counts.size() >= full, pos) ||
      !subtract_store(neg_, older.neg_, neg_.counts.size() >= full, neg))
    return false;
  const double zero = zero_ - older.zero_;
  const double count = count_ - older.count_;
  if (zero < 0 || count < 0) return false;
  if (count == 0) {
    clear();
    return true;
  }
  auto top = [](const Store& s) { return s.offset + static_cast<int32_t>(s.counts.size()) - 1; };
  double lo, hi;
  if (!neg.counts.empty()) lo = -value_of(top(neg));
  else if (zero > 0) lo = 0;
  else lo = value_of(pos.offset);
  if (!pos.counts.empty()) hi = value_of(top(pos));
  else if (zero > 0) hi = 0;
  else hi = -value_of(neg.offset);
  const double new_min = std::clamp(lo, min_, max_);
  const double new_max = std::clamp(hi, new_min, max_);
  sum_ -= older.sum_;
  pos_ = std::move(pos);
  neg_ = std::move(neg);
  zero_ = zero;
  count_ = count;
  min_ = new_min;
  max_ = new_max;
  return true;
}

double Sketch::quantile(double q) const {
  if (empty() || std::isnan(q)) return std::numeric_limits<double>::quiet_NaN();
  if (q <= 0) return min_;
  if (q >= 1) return max_;
  const double rank = q * (count_ - 1);
  double seen = 0;
  double result = max_;
  bool found = false;
  // Ascending value order: negatives from the largest magnitude, then zeros, then positives.
  for (size_t i = neg_.counts.size(); i-- > 0 && !found;) {
    seen += neg_.counts[i];
    if (seen > rank) {
      result = -value_of(neg_.offset + static_cast<int32_t>(i));
      found = true;
    }
  }
  if (!found) {
    seen += zero_;
    if (seen > rank) {
      result = 0;
      found = true;
    }
  }
  for (size_t i = 0; i < pos_.counts.size() && !found; ++i) {
    seen += pos_.counts[i];
    if (seen > rank) {
      result = value_of(pos_.offset + static_cast<int32_t>(i));
      found = true;
    }
  }
  return std::clamp(result, min_, max_);
}

void Sketch::clear() {
  pos_ = Store{};
  neg_ = Store{};
  zero_ = 0;
  count_ = 0;
  sum_ = 0;
  min_ = kInf;
  max_ = -kInf;
}

bool Sketch::assign(double alpha, Store pos, Store neg, double zero, double count, double sum,
                    double min, double max) {
  if (!(alpha >= kMinAlpha && alpha <= kMaxAlpha)) return false;
  if (!store_is_valid(pos, max_buckets_) || !store_is_valid(neg, max_buckets_)) return false;
  if (!std::isfinite(zero) || zero < 0 || !std::isfinite(count) || count < 0) return false;
  if (!std::isfinite(sum)) return false;
  const double total = store_total(pos) + store_total(neg) + zero;
  if (std::fabs(total - count) > 1e-9 * std::max(1.0, count)) return false;
  if (count > 0) {
    if (!std::isfinite(min) || !std::isfinite(max) || min > max) return false;
  } else {
    min = kInf;
    max = -kInf;
    sum = 0;
  }
  // Every bucket must be one that index_of() can produce for a value in [kMinPositive, DBL_MAX].
  const double ln_gamma = std::log((1 + alpha) / (1 - alpha));
  const double lowest_index = std::ceil(std::log(kMinPositive) / ln_gamma);
  const double highest_index = std::ceil(std::log(std::numeric_limits<double>::max()) / ln_gamma);
  for (Store* s : {&pos, &neg}) {
    trim_store(*s);
    if (s->counts.empty()) continue;
    const double top = static_cast<double>(s->offset) + static_cast<double>(s->counts.size()) - 1;
    if (static_cast<double>(s->offset) < lowest_index || top > highest_index) return false;
  }
  alpha_ = alpha;
  gamma_ = (1 + alpha) / (1 - alpha);
  ln_gamma_ = std::log(gamma_);
  pos_ = std::move(pos);
  neg_ = std::move(neg);
  zero_ = zero;
  count_ = count;
  sum_ = sum;
  min_ = min;
  max_ = max;
  return true;
}

bool Sketch::operator==(const Sketch& o) const {
  return alpha_ == o.alpha_ && pos_ == o.pos_ && neg_ == o.neg_ && zero_ == o.zero_ &&
         count_ == o.count_ && sum_ == o.sum_ && min_ == o.min_ && max_ == o.max_;
}

}  // namespace statherd
