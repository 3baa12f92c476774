// The agent -> server wire codec: one Batch per HTTP POST, binary, little-endian.
// Documented byte by byte in docs/FORMAT.md ("Agent batch"). Decoding is bounded: every length
// is checked against the remaining bytes and against WireLimits, so a hostile payload yields an
// Error and never reads past the span.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/sample.h"

namespace statherd {

inline constexpr char kBatchContentType[] = "application/x-statherd-batch";

struct Batch {
  std::string agent_id;
  uint64_t seq = 0;        // per agent, strictly increasing across agent restarts
  int64_t sent_ms = 0;     // when the agent built it (wall clock)
  std::vector<SourceSamples> sources;
  std::vector<SourceError> errors;  // sources that failed this scrape (shown in /api/v1/sources)
  // decode_batch_lazy(): a copy of the payload, which the sources' `encoded` samples point into
  // (a SourceSamples copied out must not outlive it; encode_batch() writes them as they are).
  std::shared_ptr<const std::string> payload;

  size_t sample_count() const;  // decoded and encoded
};

struct WireLimits {
  uint64_t max_sources = 100'000;
  uint64_t max_samples = 10'000'000;   // over the whole batch
  uint64_t max_string = 64 * 1024;     // bytes per string
  uint64_t max_tags = 64;              // per sample
  uint64_t max_buckets = 16'384;       // per sketch store / bucket list
  uint64_t max_errors = 10'000;
};

std::string encode_batch(const Batch& batch);
// over_limit (optional): set when the batch is refused only for holding more sources or
// samples than `limits` allow (well formed as far as read; smaller parts would pass).
Result<Batch> decode_batch(std::span<const uint8_t> bytes, const WireLimits& limits = {},
                           bool* over_limit = nullptr);
inline Result<Batch> decode_batch(std::string_view bytes, const WireLimits& limits = {},
                                  bool* over_limit = nullptr) {
  return decode_batch(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()),
                                               bytes.size()),
                      limits, over_limit);
}

// As decode_batch, with the same checks and errors, but each source's samples stay encoded
// (SourceSamples::encoded, into Batch::payload, a copy of `bytes`): validating reads every
// sample into one reused Sample, so a batch costs no allocation per sample (the server's
// ingest: issue #10). for_each_sample() reads them again.
Result<Batch> decode_batch_lazy(std::string_view bytes, const WireLimits& limits = {},
                                bool* over_limit = nullptr);

// Calls fn(i, sample) for each of src's samples in order, decoded or encoded. An encoded one is
// read into one Sample reused for the whole source: valid during the call only. Throws
// std::runtime_error if encoded samples do not read (not from decode_batch_lazy's validation).
void for_each_sample(const SourceSamples& src,
                     const std::function<void(size_t, const Sample&)>& fn);

}  // namespace statherd
