// The bearer token POST /api/v1/ingest checks. main owns the one instance; ApiRoutes reads it
// on the io thread for every ingest, ServerRuntime replaces it on a SIGHUP reload (pipeline
// thread), so the routes never keep a copy of their own and need no setter.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace statherd::server {

// Compares without an early exit, so the time taken does not reveal a matching prefix.
bool constant_time_equal(std::string_view a, std::string_view b);

class IngestToken {
 public:
  explicit IngestToken(std::string token) : token_(std::move(token)) {}
  IngestToken(const IngestToken&) = delete;
  IngestToken& operator=(const IngestToken&) = delete;

  // SIGHUP: every check from now on compares with `token`.
  void set(std::string token);
  // True if `bearer` (the part after "Bearer ") is the token; constant time in its contents.
  bool matches(std::string_view bearer) const;

 private:
  mutable std::mutex mu_;  // set() on the pipeline thread, matches() on the io thread
  std::string token_;
};

}  // namespace statherd::server
