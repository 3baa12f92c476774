// Splitting a batch the server (or a proxy) answered with 413: two halves by sample count, in
// the seq windows described in agent/spool_parts.h. Sources keep their identity and `fresh`
// flag in each half they have samples in; the scrape errors go with the first half.
#pragma once

#include <vector>

#include "agent/spool_parts.h"
#include "common/result.h"

namespace statherd::agent {

// The two halves of `part`, or an error saying why it cannot be split: a single sample, a seq
// window of width 1 (a batch from an older agent), or a body that does not decode. The caller
// quarantines the part then.
Result<std::vector<SpoolPart>> split_part(const SpoolPart& part);

}  // namespace statherd::agent
