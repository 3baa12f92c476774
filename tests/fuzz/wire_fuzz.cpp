// libFuzzer target: the agent batch decoder must never crash or read out of bounds, whatever it
// accepts must re-encode to bytes that decode to the same batch, and the lazy decode (the
// server's ingest) must accept and refuse exactly the same bytes, with the same samples.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "common/wire.h"

namespace {

// b with every source's samples decoded (the lazy ones read out), encoded again: two batches
// with the same samples give the same bytes (a NaN, which a summary's min may be, included).
std::string materialized(const statherd::Batch& b) {
  statherd::Batch m = b;
  for (auto& src : m.sources) {
    std::vector<statherd::Sample> all;
    statherd::for_each_sample(src, [&](size_t, const statherd::Sample& s) { all.push_back(s); });
    src.samples = std::move(all);
    src.encoded = {};
    src.encoded_count = 0;
  }
  return statherd::encode_batch(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  statherd::WireLimits limits;
  limits.max_samples = 100'000;
  auto r = statherd::decode_batch(std::span<const uint8_t>(data, size), limits);
  auto lazy = statherd::decode_batch_lazy(
      std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (r.ok() != lazy.ok()) std::abort();
  if (!r.ok()) {
    if (r.error().to_string() != lazy.error().to_string()) std::abort();
    return 0;
  }
  std::string again = statherd::encode_batch(*r);
  if (lazy->sample_count() != r->sample_count() || materialized(*lazy) != again) std::abort();
  auto r2 = statherd::decode_batch(again, limits);
  if (!r2.ok() || r2->sample_count() != r->sample_count()) std::abort();
  return 0;
}
