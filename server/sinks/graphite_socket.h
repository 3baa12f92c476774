// Blocking-with-deadline TCP helpers of GraphiteSink's sender thread (graphite_socket.cpp).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace statherd::server {

// Connects to "host:port" (first resolved address that answers) before `deadline`.
// Returns the fd, or -1 with `error` set.
int connect_to(const std::string& address, std::chrono::steady_clock::time_point deadline,
               std::string& error);
bool peer_closed(int fd);
bool write_all(int fd, bool is_socket, std::string_view data,
               std::chrono::steady_clock::time_point deadline);

}  // namespace statherd::server
