// A mergeable quantile sketch with a relative-error guarantee (DDSketch-style logarithmic
// buckets). For alpha = 0.01 every quantile it returns is within 1 % (relative) of a value
// whose rank is exactly the requested one; merging two sketches is exact (bucket counts add).
//
// Bucket index of a positive value x: i = ceil(ln(x) / ln(gamma)), gamma = (1+alpha)/(1-alpha);
// bucket i covers (gamma^(i-1), gamma^i] and is represented by 2*gamma^i/(gamma+1).
// Negative values use the same indexing on |x| in a separate store; zeros (|x| < min_positive)
// are counted apart. The number of buckets per store is bounded (max_buckets); past that the
// lowest buckets collapse into one, which only costs accuracy at the low end.
// This indexing is part of the statherd v2 file format (docs/FORMAT.md).
#pragma once

#include <cstdint>
#include <vector>

namespace statherd {

class Sketch {
 public:
  static constexpr double kDefaultAlpha = 0.01;
  static constexpr double kMinPositive = 1e-9;
  static constexpr int kDefaultMaxBuckets = 4096;

  Sketch() : Sketch(kDefaultAlpha) {}
  explicit Sketch(double alpha, int max_buckets = kDefaultMaxBuckets);

  void add(double value, double count = 1);
  // Exact merge: bucket counts, count, sum, min and max combine. Both sketches must share alpha.
  bool merge(const Sketch& other);
  // Exact difference of two cumulative states of one sketch: *this becomes *this - older
  // (bucket counts, zero count, count and sum subtract). A bucket of `older` below this store's
  // lowest index counts in the lowest bucket when this store is full (the writer collapsed it).
  // Returns false and leaves *this unchanged when older is not an earlier state of *this
  // (another alpha, or any count would go negative: a reset). The exact min/max of the
  // difference are unknown: they become the representatives of the lowest and highest
  // non-empty buckets (within alpha), kept inside [min(), max()] of *this.
  bool subtract(const Sketch& older);

  // q in [0, 1]. Returns NaN when empty.
  double quantile(double q) const;

  double count() const { return count_; }
  double sum() const { return sum_; }
  double min() const { return min_; }   // exact; +Inf when empty
  double max() const { return max_; }   // exact; -Inf when empty
  double mean() const { return count_ > 0 ? sum_ / count_ : 0; }
  double alpha() const { return alpha_; }
  bool empty() const { return count_ == 0; }
  void clear();

  int32_t index_of(double positive_value) const;     // bucket index for x > 0
  double value_of(int32_t index) const;               // representative value of bucket

  // Dense stores: counts[k] is the count of bucket (offset + k).
  struct Store {
    int32_t offset = 0;
    std::vector<double> counts;
    bool operator==(const Store&) const = default;
  };
  const Store& positive() const { return pos_; }
  const Store& negative() const { return neg_; }
  double zero_count() const { return zero_; }

  // Rebuild from raw parts (wire decoding). Returns false if the parts are inconsistent
  // (negative or non-finite counts, count mismatch, too many buckets).
  bool assign(double alpha, Store pos, Store neg, double zero, double count, double sum, double min,
              double max);

  bool operator==(const Sketch& o) const;

 private:
  void add_to(Store& s, int32_t index, double count);
  void collapse(Store& s);

  double alpha_;
  double gamma_;
  double ln_gamma_;
  int max_buckets_;
  Store pos_, neg_;
  double zero_ = 0;
  double count_ = 0, sum_ = 0;
  double min_, max_;
};

}  // namespace statherd
