// Ships encoded batches to statherd-server: one synchronous HTTP/1.1 POST per batch
// (POST {server}/api/v1/ingest) through the shared client in common/http_client.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace statherd::agent {

// http://host:port[/path]. https is refused with a hint (no TLS in the agent).
struct ServerUrl {
  std::string host;
  uint16_t port = 80;
  std::string path_prefix;  // "" or "/prefix" (no trailing slash)
  std::string ingest_target() const { return path_prefix + "/api/v1/ingest"; }
};
Result<ServerUrl> parse_server_url(std::string_view url);

// What one answer means for a spooled batch (the table in docs/OPERATIONS.md, "Delivery").
enum class ShipOutcome {
  Acked,          // 200: the server has it in its write-ahead log; remove from the spool
  RetryLater,     // any other answer, 400 without the verdict, network errors: keep, retry
  Unauthorized,   // 401/403: keep the batch, retry slowly; the token is probably wrong
  Malformed,      // 400 carrying the server's verdict (kMalformedVerdict): quarantine it
  TooLarge,       // 413: split the batch and send the halves
};
const char* ship_outcome_name(ShipOutcome o);

struct ShipResult {
  ShipOutcome outcome = ShipOutcome::RetryLater;
  int http_status = 0;   // 0: no HTTP response (connect/write/read failed)
  std::string detail;    // error text or the start of the response body
};

// Something that delivers one batch; HttpBatchSender in production, fakes in tests.
class BatchSender {
 public:
  virtual ~BatchSender() = default;
  virtual ShipResult send(uint64_t seq, std::string_view encoded_batch) = 0;
};

struct HttpSenderOptions {
  ServerUrl url;
  std::string token;
  std::string agent_id;
  std::chrono::milliseconds timeout{5'000};   // whole request: resolve+connect+write+read
  size_t max_response_bytes = 64 * 1024;
};

// One connection per request (batches are few: one per interval), so no stale keep-alive state.
class HttpBatchSender : public BatchSender {
 public:
  explicit HttpBatchSender(HttpSenderOptions options) : options_(std::move(options)) {}
  ShipResult send(uint64_t seq, std::string_view encoded_batch) override;
  // For the shutdown flush: a shorter deadline.
  void set_timeout(std::chrono::milliseconds t) { options_.timeout = t; }

 private:
  HttpSenderOptions options_;
};

// The verdict field of the server's 400 for a batch its decoder refused (docs/API.md):
// {"status": "error", "verdict": "malformed_batch", ...}. Only that 400 lets a batch leave the
// spool (for the quarantine); a 400 from anything else between agent and server is retried.
inline constexpr const char* kMalformedVerdict = "malformed_batch";

// Maps an HTTP status (and, for 400, the response body) to what the agent does with the batch.
ShipOutcome classify_http_status(int status, std::string_view body = {});

}  // namespace statherd::agent
