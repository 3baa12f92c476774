#include "server/ingest_token.h"

#include <algorithm>
#include <utility>

namespace statherd::server {

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

void IngestToken::set(std::string token) {
  std::lock_guard<std::mutex> guard(mu_);
  token_ = std::move(token);
}

bool IngestToken::matches(std::string_view bearer) const {
  std::lock_guard<std::mutex> guard(mu_);
  return constant_time_equal(bearer, token_);
}

}  // namespace statherd::server
