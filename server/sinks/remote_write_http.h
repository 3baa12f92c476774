// One HTTP/1.1 POST for the remote-write sink: plain http:// only, "Connection: close", one
// deadline covering resolve + connect + send + read, a 64 KiB limit on the answer's body.
// The exchange itself is the shared client in common/http_client.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace statherd::server {

struct RwUrl {
  std::string host;
  uint16_t port = 80;
  std::string target = "/";
  std::string to_string() const { return "http://" + host + ":" + std::to_string(port) + target; }
};
// http://host[:port][/path]; https and user info are refused with a hint.
Result<RwUrl> parse_remote_write_url(std::string_view url);

struct RwPostResult {
  int status = 0;       // 0: no answer (connection error or timeout); see `error`
  std::string error;    // transport error, or the start of a non-2xx answer's body
  // No answer, but the request was sent whole (the failure came while reading the answer): the
  // receiver may have stored it.
  bool maybe_stored = false;
};

RwPostResult http_post(const RwUrl& url, const std::string& body,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       std::chrono::milliseconds timeout);

}  // namespace statherd::server
