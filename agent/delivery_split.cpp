#include "agent/delivery_split.h"

#include "common/wire.h"

namespace statherd::agent {
namespace {

// The batch's samples [from, to) in source order, as a batch of its own.
Batch slice(const Batch& whole, size_t from, size_t to) {
  Batch out;
  out.agent_id = whole.agent_id;
  out.sent_ms = whole.sent_ms;
  size_t at = 0;
  for (const auto& src : whole.sources) {
    const size_t begin = at, end = at + src.samples.size();
    at = end;
    if (end <= from || begin >= to) continue;
    SourceSamples part;
    part.id = src.id;
    part.fresh = src.fresh;
    const size_t lo = std::max(from, begin) - begin, hi = std::min(to, end) - begin;
    part.samples.assign(src.samples.begin() + static_cast<std::ptrdiff_t>(lo),
                        src.samples.begin() + static_cast<std::ptrdiff_t>(hi));
    out.sources.push_back(std::move(part));
  }
  return out;
}

}  // namespace

Result<std::vector<SpoolPart>> split_part(const SpoolPart& part) {
  const std::string what =
      "batch seq " + std::to_string(part.seq) + " (" + std::to_string(part.body.size()) + " bytes)";
  auto batch = decode_batch(part.body);
  if (!batch) return make_error(what + " does not decode: " + batch.error().message);
  const size_t samples = batch->sample_count();
  if (samples <= 1)
    return make_error(what + " holds " + std::to_string(samples) +
                          " sample(s) and is still too large for the server",
                      "raise the server's limits.max_body_bytes, or shorten that source's "
                      "names, tags or histogram buckets");
  if (part.seq - part.floor < 2)
    return make_error(what + " has no free seqs to split into (spooled by an older agent)",
                      "raise the server's limits.max_body_bytes until it is delivered");
  const uint64_t mid = part.floor + (part.seq - part.floor) / 2;
  const size_t half = (samples + 1) / 2;
  Batch first = slice(*batch, 0, half), second = slice(*batch, half, samples);
  first.errors = std::move(batch->errors);
  first.seq = mid;
  second.seq = part.seq;
  return std::vector<SpoolPart>{{part.floor, mid, encode_batch(first)},
                                {mid, part.seq, encode_batch(second)}};
}

}  // namespace statherd::agent
