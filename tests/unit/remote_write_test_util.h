// Shared by the remote_write tests: an independent protobuf decoder of WriteRequests, and a
// loopback receiver answering scripted statuses (and bodies).
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <snappy.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "server/sinks/remote_write.h"
#include "tests/loopback_port.h"

namespace statherd::server::testing {

// --- a tiny protobuf decoder, written from the wire format, independent of the encoder ---
struct Reader {
  std::string_view in;
  size_t pos = 0;
  bool more() const { return pos < in.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; pos < in.size(); shift += 7) {
      const auto b = static_cast<uint8_t>(in[pos++]);
      v |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) break;
    }
    return v;
  }
  std::string_view bytes() {
    const size_t n = varint();
    std::string_view out = in.substr(pos, n);
    pos += n;
    return out;
  }
  double fixed64() {
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits |= uint64_t{static_cast<uint8_t>(in[pos + i])} << (8 * i);
    pos += 8;
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }
};

inline RwSeries decode_series(std::string_view bytes) {
  RwSeries s;
  Reader r{bytes};
  while (r.more()) {
    const uint64_t key = r.varint();
    Reader sub{r.bytes()};
    if (key == ((1 << 3) | 2)) {
      RwLabel l;
      while (sub.more()) {
        const uint64_t k = sub.varint();
        (k == ((1 << 3) | 2) ? l.name : l.value) = std::string(sub.bytes());
      }
      s.labels.push_back(l);
    } else {
      EXPECT_EQ(key, uint64_t{(2 << 3) | 2});
      RwSample smp;
      while (sub.more()) {
        const uint64_t k = sub.varint();
        if (k == ((1 << 3) | 1))
          smp.value = sub.fixed64();
        else if (k == ((2 << 3) | 0))
          smp.timestamp_ms = static_cast<int64_t>(sub.varint());
        else
          ADD_FAILURE() << "unexpected sample field key " << k;
      }
      s.samples.push_back(smp);
    }
  }
  return s;
}

inline std::vector<RwSeries> decode_write_request(std::string_view bytes) {
  std::vector<RwSeries> out;
  Reader r{bytes};
  while (r.more()) {
    EXPECT_EQ(r.varint(), uint64_t{(1 << 3) | 2});
    out.push_back(decode_series(r.bytes()));
  }
  return out;
}

inline RwSeries series(std::vector<RwLabel> labels, std::vector<RwSample> samples) {
  return {std::move(labels), std::move(samples)};
}
// A loopback HTTP receiver answering scripted statuses, one connection each; records requests.
class ScriptedReceiver {
 public:
  // gate_first: the first answer waits for answer_first (first_request_read is set before).
  // bodies[i]: the body of answer i ("no" beyond them).
  explicit ScriptedReceiver(std::vector<int> statuses, bool gate_first = false,
                            std::vector<std::string> bodies = {})
      : statuses_(std::move(statuses)), bodies_(std::move(bodies)), gate_first_(gate_first) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedReceiver() {
    join();
    ::close(fd_);
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  uint16_t port() const { return port_; }
  std::vector<std::string> requests;      // head + "\n\n" + body; read after join()
  std::promise<void> first_request_read;  // set once the first request is read
  std::promise<void> answer_first;        // the first answer waits for this

 private:
  void serve() {
    for (int status : statuses_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string got;
      char buf[4096];
      size_t head_end = std::string::npos, want = 0;
      while (head_end == std::string::npos || got.size() < head_end + 4 + want) {
        const ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
        if (head_end == std::string::npos && (head_end = got.find("\r\n\r\n")) != got.npos) {
          const size_t cl = got.find("Content-Length: ");
          want = cl < head_end ? std::stoul(got.substr(cl + 16)) : 0;
        }
      }
      requests.push_back(got.substr(0, head_end) + "\n\n" + got.substr(head_end + 4));
      if (gate_first_ && requests.size() == 1) {
        first_request_read.set_value();
        answer_first.get_future().wait();
      }
      const size_t i = requests.size() - 1;
      const std::string body = i < bodies_.size() ? bodies_[i] : "no";
      const std::string answer = "HTTP/1.1 " + std::to_string(status) +
                                 " X\r\nContent-Length: " + std::to_string(body.size()) +
                                 "\r\nConnection: close\r\n\r\n" + body;
      (void)!::write(c, answer.data(), answer.size());
      ::close(c);
    }
  }
  std::vector<int> statuses_;
  std::vector<std::string> bodies_;
  bool gate_first_ = false;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

inline RemoteWriteSinkOptions fast_options(uint16_t port) {
  RemoteWriteSinkOptions o;
  o.url = *parse_remote_write_url("http://127.0.0.1:" + std::to_string(port) + "/api/v1/write");
  o.timeout = std::chrono::milliseconds(5'000);
  o.backoff_initial = std::chrono::milliseconds(1);
  o.backoff_max = std::chrono::milliseconds(2);
  // The sink started at unix time 0: the tests' samples (stamped 1000, 2000, ...) are all newer
  // than its start, so a refusal splits them (cut_held_samples() only cuts older ones).
  o.clock_ms = [] { return int64_t{0}; };
  return o;
}

// A loopback port that refuses connections: bound, never listened on, closed.
inline uint16_t refusing_port() {
  return test::unused_loopback_port();
}

// The series of one recorded request (head + "\n\n" + snappy body).
inline std::vector<RwSeries> sent_series(const std::string& request) {
  const std::string packed = request.substr(request.find("\n\n") + 2);
  std::string raw;
  EXPECT_TRUE(snappy::Uncompress(packed.data(), packed.size(), &raw));
  return decode_write_request(raw);
}

}  // namespace statherd::server::testing
