// The server's write-ahead log: a batch is appended (and fsynced) before it is acknowledged.
//
// Files: <state_dir>/wal-<n>.log, n increasing (zero-padded). Record layout, little-endian:
//   u32 body_length | u32 crc32(body) (IEEE, as zlib) | body
//   body = i64 now_ms (server clock at ingest) | raw batch bytes as received (common/wire.h)
// Keeping now_ms makes a replay take exactly the decisions the original ingest took.
// A torn tail (short record or crc mismatch, e.g. after kill -9 mid-write) is truncated away at
// recovery with a warning; everything before it was acknowledged and is replayed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace statherd::server {

uint32_t crc32_ieee(std::string_view bytes);

struct WalRecord {
  int64_t now_ms = 0;
  std::string_view batch;
};

class WalWriter {
 public:
  WalWriter() = default;
  ~WalWriter();
  WalWriter(const WalWriter&) = delete;
  WalWriter& operator=(const WalWriter&) = delete;

  // Create (or append to) <dir>/wal-<number>.log.
  Status open(const std::string& dir, uint64_t number, bool fsync);
  // Append one record; on failure the file is cut back to its previous size.
  Status append(int64_t now_ms, std::string_view batch);
  void close();
  bool is_open() const { return fd_ >= 0; }
  uint64_t number() const { return number_; }
  uint64_t bytes() const { return bytes_; }

 private:
  std::string dir_;
  uint64_t number_ = 0;
  uint64_t bytes_ = 0;
  int fd_ = -1;
  bool fsync_ = true;
  std::string buffer_;
};

std::string wal_path(const std::string& dir, uint64_t number);
// WAL file numbers present in dir, ascending.
std::vector<uint64_t> list_wal_files(const std::string& dir);
// Read every intact record of one file in order; a torn tail is truncated (warning logged).
Status replay_wal_file(const std::string& path, const std::function<void(const WalRecord&)>& fn);
// Delete WAL files numbered below keep_from.
void remove_wal_files_before(const std::string& dir, uint64_t keep_from);
// fsync a directory so a create/rename in it is durable.
Status fsync_dir(const std::string& dir);

}  // namespace statherd::server
