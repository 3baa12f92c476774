// The remote_write sink's outbox: the one request in flight, kept on disk until its answer is
// known, so a crash between "the receiver stored it" and "the server saw the 2xx" costs nothing.
//
// Why an outbox (and not per-series marks written ahead): after a restart the engine rebuilds
// the intervals since its last snapshot from the WAL, and their values may differ from what was
// sent (late data folded in), while Prometheus refuses a different value at a timestamp it holds
// ("duplicate sample for timestamp"). The outbox keeps the exact request bytes and the per-series
// marks it sets: at start the sink resends the bytes unchanged (an identical sample at the same
// timestamp is accepted silently; one the receiver never got is stored now) and then treats every
// regenerated sample at or before those marks as sent. Nothing is sent twice with another value,
// and nothing of that request is lost, whichever side of the crash the receiver's commit fell on.
// Marks written ahead would lose the request when the receiver never stored it.
//
// File <state_dir>/remote_write.outbox (0600), written tmp + fsync + rename + fsync(dir) before
// the request is sent, removed once its answer is known. All integers little-endian:
//   "SHRWOB1\n" | u32 crc32 (of every byte after this field) | u32 url_len | url
//   | u32 marks | marks x (u32 key_len | key (rw_series_key) | i64 newest ms) | u32 body_len | body
// body: the snappy-compressed WriteRequest exactly as sent. A file that does not verify (torn,
// truncated, garbage) is logged, renamed to remote_write.outbox.damaged and ignored: the restart
// then relies on the high-water floor alone (remote_write_hwm.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "server/sinks/remote_write_hwm.h"

namespace statherd::server {

struct RwPending {
  std::string url;   // where it was sent
  RwMarks marks;     // per series, the newest timestamp in the request
  std::string body;  // snappy-compressed WriteRequest, as sent
};

std::string encode_rw_pending(const RwPending& pending);
Result<RwPending> decode_rw_pending(std::string_view bytes);

// Writes `bytes` to `path` durably: <path>.tmp (0600), fsync, rename, fsync of the directory.
Status write_rw_state_file(const std::string& path, std::string_view bytes);

class RwOutbox {
 public:
  explicit RwOutbox(std::string path);  // empty: nothing persisted
  // The request a previous run sent without learning its answer; nullopt if there is none, or
  // it cannot be read (logged with a hint; a damaged file is moved aside).
  std::optional<RwPending> left_over() const;
  // Before sending: failures are logged (once until the next success) and the request is sent
  // anyway; only the crash window is then uncovered.
  void put(const RwPending& pending);
  void clear();  // the answer is known

 private:
  std::optional<RwPending> set_aside(const std::string& why) const;
  std::string path_;
  bool failing_ = false;
};

}  // namespace statherd::server
