// One HTTP/1.1 request on a fresh loopback connection, for the tests of the real HttpServer.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace statherd::server::testing {

// A socket connected to 127.0.0.1:port whose reads give up after timeout_s seconds.
inline int connect_loopback(uint16_t port, long timeout_s) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

struct HttpReply {
  int status = 0;
  std::string head, body;
};

// One request on a fresh connection ("Connection: close"); reads until the server closes.
inline HttpReply request(uint16_t port, const std::string& method, const std::string& target,
                  const std::string& body = "", const std::string& extra_headers = "") {
  int fd = connect_loopback(port, 20);
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
                    extra_headers + "Content-Length: " + std::to_string(body.size()) +
                    "\r\n\r\n" + body;
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string raw;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) raw.append(buf, static_cast<size_t>(n));
  ::close(fd);
  HttpReply reply;
  size_t split = raw.find("\r\n\r\n");
  if (raw.size() < 12 || split == std::string::npos) return reply;
  reply.status = std::stoi(raw.substr(9, 3));
  reply.head = raw.substr(0, split);
  reply.body = raw.substr(split + 4);
  return reply;
}

}  // namespace statherd::server::testing
