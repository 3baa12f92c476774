// A split batch in the spool: after a 413 the batch file <seq>.batch is replaced by ONE file
// <seq>.parts holding its parts, so the split is atomic (rename) and the whole batch is never
// sent again once a part may have been applied.
//
// Seq windows. begin_batch() hands out seqs in steps of kSeqStride (1024), so batch N owns the
// window (N - 1024, N]: no other batch has a seq in it. A part owns a sub-window (floor, seq]
// and travels with seq = the window's top. Splitting a part (floor, seq] in two gives
// (floor, mid] and (mid, seq], mid = floor + (seq - floor) / 2. So, with the server's dedup
// rule (agent id, seq <= last_seq: duplicate):
//   - parts are applied in order (their seqs ascend, and lie below the next batch's window);
//   - if the unsplit batch had been applied already (its ack lost, then a proxy said 413),
//     every part's seq is <= N: all are duplicates, nothing counts twice;
//   - a part acked before a crash or a retry is a duplicate when re-sent.
// A window of width 1 cannot be split (a batch spooled by an older agent with seqs in steps
// of 1): such a batch, like a single sample over the limit, goes to the quarantine.
//
// File layout (native byte order, local file): "SHP1", u32 part count, then per part
// u64 floor, u64 seq, u64 length, `length` bytes of encoded batch (common/wire.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace statherd::agent {

inline constexpr uint64_t kSeqStride = 1024;

struct SpoolPart {
  uint64_t floor = 0;  // exclusive lower end of the seq window
  uint64_t seq = 0;    // the window's top; the seq this part is sent with
  std::string body;    // encoded Batch whose seq field == seq
};

std::string encode_parts(const std::vector<SpoolPart>& parts);
Result<std::vector<SpoolPart>> decode_parts(std::string_view data, const std::string& path);

}  // namespace statherd::agent
