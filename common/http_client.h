// The one HTTP/1.1 client of both binaries: the agent's shipper and HTTP sources, the server's
// remote-write sink. Plain http:// only, one connection per request ("Connection: close"), one
// deadline covering resolve + connect + send + read, and a limit on the answer's body that also
// holds against an announced Content-Length. Callers turn the result into their own messages.
// Beast lives in http_client.cpp only, to keep compile times down.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace statherd {

struct HttpTarget {
  std::string host;
  uint16_t port = 80;
  std::string target = "/";  // path + query
};

enum class HttpMethod { Get, Post };

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  HttpTarget target;
  HttpMethod method = HttpMethod::Get;
  std::string body;
  HttpHeaders headers;  // Host and Connection are set by the client
  size_t max_response_body = 64 * 1024;
};

// Where an exchange stopped.
enum class HttpStep { Resolve, Connect, Send, ReadHeader, ReadBody };
// "resolve the host", "connect", "send the request", "read the answer's headers", "read the
// answer".
const char* http_step_name(HttpStep step);

enum class HttpFailure {
  None,
  Timeout,         // the deadline passed during `step`
  Refused,         // connection refused
  BodyTooLarge,    // announced or received body over max_response_body
  HeaderTooLarge,  // headers over 16 KiB
  Other,           // any other transport or protocol error; see `cause`
  ClientError,     // the client itself failed (e.g. out of memory), not the exchange
};

struct HttpExchangeResult {
  int status = 0;  // 0: no complete answer; see `failure`
  std::string reason;
  std::string content_type;
  std::string body;  // at most max_response_body bytes
  HttpFailure failure = HttpFailure::None;
  HttpStep step = HttpStep::Resolve;  // the failing step when failure != None
  std::string cause;                  // e.g. "Connection refused", "answer body over 65536 bytes"
  std::string error;  // step and cause in one phrase, e.g. "connect failed: ..."; "" if ok
  bool ok() const { return failure == HttpFailure::None; }
};

// One exchange on a private event loop, bounded by `deadline` from now.
HttpExchangeResult http_exchange(HttpRequest request, std::chrono::milliseconds deadline);

// The authority of an http:// URL: "host", "host:port" or "[v6addr]:port" into host and port
// (port left as is when absent). `what` names the URL in errors ("server URL http://x:0");
// `example` is the hint for a missing host. User info ("a@b") is the caller's to refuse.
Status parse_http_authority(std::string_view authority, const std::string& what,
                            std::string_view example, std::string& host, uint16_t& port);
// All of them at once on one event loop under one deadline; results in the order of `requests`.
// A slow endpoint costs the others nothing.
std::vector<HttpExchangeResult> http_exchange_all(std::vector<HttpRequest> requests,
                                                  std::chrono::milliseconds deadline);

}  // namespace statherd
