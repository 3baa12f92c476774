// The server's write-ahead log: a batch is appended (and fsynced) before it is acknowledged.
//
// Files: <state_dir>/wal-<n>.log, n increasing (zero-padded). All integers little-endian.
// Format 2 (written since the WAL was framed for resynchronisation):
//   file header (8 bytes): "SHWAL2\n\0"
//   record: u32 magic 0x52574853 ("SHWR") | u32 body_length | u32 crc32(body)
//           | u32 crc32(the 12 bytes before it) | body
//   body = i64 now_ms (server clock at ingest) | raw batch bytes as received (common/wire.h)
// Keeping now_ms makes a replay take exactly the decisions the original ingest took.
// Replay: a record whose header or body does not verify is damaged; the reader scans forward
// byte by byte for the next magic whose header crc, length and body crc all verify and goes on
// from there, so a flipped byte costs only the record it hit (reported with file and offset).
// "Torn" is only a short tail at the end of the newest file with no intact record after it (a
// partial header, a record running past end of file, or zeros): the write that kill -9 cut
// short, never acknowledged; it is truncated away. Damage anywhere else is never truncated.
// Format 1 (no file header; records u32 body_length | u32 crc32(body) | body) is still
// replayed after an upgrade: up to its first bad record, the rest of that file is reported
// as one damaged range (format 1 has no sync marker to resynchronise on).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace statherd::server {

uint32_t crc32_ieee(std::string_view bytes);
// The CRC of what `crc` covered followed by `bytes` (crc32_ieee(a + b) ==
// crc32_ieee_update(crc32_ieee(a), b); 0 covers nothing).
uint32_t crc32_ieee_update(uint32_t crc, std::string_view bytes);

struct WalRecord {
  int64_t now_ms = 0;
  std::string_view batch;
  uint64_t offset = 0;      // of the record's first byte in its file
  std::string_view framed;  // the whole record as stored (for quarantine)
};

// Bytes of one file that replay could not use, and whether they were a torn tail.
struct WalDamage {
  std::string path;
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

struct WalReplayReport {
  uint64_t records = 0;               // intact records handed to the callback
  std::vector<WalDamage> damaged;     // damaged ranges (each counted as one damaged record)
  uint64_t torn_bytes = 0;            // short tail truncated from the newest file
};

// One record of format 2 (header + body) for `now_ms` and `batch`.
std::string frame_wal_record(int64_t now_ms, std::string_view batch);
inline constexpr char kWalFileHeader[8] = {'S', 'H', 'W', 'A', 'L', '2', '\n', '\0'};

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
  // Append records already framed (frame_wal_record), concatenated: one write, one fsync
  // (group commit). On failure the file is cut back to its previous size.
  Status append_framed(std::string_view records);
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
// Read every intact record of one file in order, skipping damaged ones (each logged with file
// and offset, and added to `report`). `newest`: the last file, whose short tail may be torn
// (then truncated away). Errors only when the file cannot be read.
Status replay_wal_file(const std::string& path, bool newest,
                       const std::function<void(const WalRecord&)>& fn, WalReplayReport& report);
// Delete WAL files numbered below keep_from.
void remove_wal_files_before(const std::string& dir, uint64_t keep_from);
// fsync a directory so a create/rename in it is durable.
Status fsync_dir(const std::string& dir);

}  // namespace statherd::server
