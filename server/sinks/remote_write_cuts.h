// Where a refused remote_write request is cut when the receiver already holds some of its
// samples and the server does not know which (its high-water marks were lost: remote_write.hwm
// deleted, or the URL changed to another name of the same Prometheus). Prometheus' 400 does not
// name the series, and it rolls back the whole request.
//
// Only samples of intervals that began before the sink's epoch (its start, or the URL change)
// can be held already: nothing newer was ever sent. So the sink drops such samples oldest
// timestamp first, in growing steps (1, 2, 4, ... of the batch's distinct timestamps before the
// epoch; first at the hint, the newest timestamp sent to the previous URL, when there is one),
// resending after each step. The receiver's newest sample is about the same for every series (one
// writer, us, wrote them all in step), so a cut that is late enough is accepted: a batch costs at
// most 2 + log2(distinct timestamps) refused requests, not one per sample. What a cut drops are
// points of running totals the receiver already holds or that a later sample carries on; the
// totals stay exact. Samples from the epoch on are never cut: a receiver refusing those holds
// data of another writer, and the sink splits the request in halves as before.
#pragma once

#include <cstdint>
#include <vector>

#include "server/sinks/remote_write_proto.h"

namespace statherd::server {

// Ascending cut points: cut c means "drop every sample at or before c". hint_ms: INT64_MIN if
// none. Empty when the batch has no sample before epoch_ms.
std::vector<int64_t> rw_stale_cuts(const std::vector<RwSeries>& batch, int64_t epoch_ms,
                                   int64_t hint_ms);
// Removes every sample at or before cut_ms (series left empty are removed); returns how many.
uint64_t rw_drop_at_or_before(std::vector<RwSeries>& batch, int64_t cut_ms);

}  // namespace statherd::server
