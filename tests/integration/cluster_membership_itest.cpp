// A server's cluster membership (server/cluster_membership.h) against a real etcd: the key
// under a lease while running, gone at stop, written again when the lease is lost, and a
// start with etcd down that registers once etcd comes up.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "common/etcd_client.h"
#include "server/cluster_membership.h"
#include "tests/integration/etcd_process.h"

namespace statherd::server {
namespace {

using itest::EtcdProcess;
using itest::eventually;
using itest::free_port;
using namespace std::chrono_literals;


MembershipOptions options_for(uint16_t port, const std::string& id) {
  MembershipOptions o;
  o.endpoints = {{"127.0.0.1", port}};
  o.prefix = "/statherd/test/";
  o.id = id;
  o.value = R"({"ingest":"http://127.0.0.1:8470"})";
  o.lease_ttl = 3s;  // renewed every second
  return o;
}

TEST(ClusterMembership, KeyLivesWithTheServerAndGoesAtStop) {
  EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << etcd.log();
  etcd::Client c({{"127.0.0.1", etcd.port()}}, 5s);
  ClusterMembership m(options_for(etcd.port(), "s1"));
  ASSERT_TRUE(m.start());
  auto got = c.get("/statherd/test/members/s1");
  ASSERT_TRUE(got);
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, R"({"ingest":"http://127.0.0.1:8470"})");
  EXPECT_EQ(got->kvs[0].lease, m.state().lease);
  EXPECT_TRUE(m.state().registered);
  // Longer than the TTL: the renewals keep it there all along.
  const auto until = std::chrono::steady_clock::now() + 4500ms;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_EQ(c.get("/statherd/test/members/s1")->kvs.size(), 1u);
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(m.state().registrations, 1u);
  m.stop();
  EXPECT_TRUE(c.get("/statherd/test/members/s1")->kvs.empty());  // at once, not after the TTL
  m.stop();                                                      // idempotent
}

TEST(ClusterMembership, RegistersAgainWhenItsLeaseIsLost) {
  EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << etcd.log();
  etcd::Client c({{"127.0.0.1", etcd.port()}}, 5s);
  ClusterMembership m(options_for(etcd.port(), "s2"));
  ASSERT_TRUE(m.start());
  const int64_t first = m.state().lease;
  ASSERT_TRUE(c.revoke(first));  // as if it had expired (etcd unreachable longer than the TTL)
  EXPECT_TRUE(c.get("/statherd/test/members/s2")->kvs.empty());
  // The key is written before the membership's state says so: wait for both.
  ASSERT_TRUE(eventually([&] {
    auto r = c.get("/statherd/test/members/s2");
    return r && r->kvs.size() == 1 && m.state().registrations == 2;
  })) << m.state().registrations;
  const auto s = m.state();
  EXPECT_TRUE(s.registered);
  EXPECT_NE(s.lease, first);
  EXPECT_EQ(c.get("/statherd/test/members/s2")->kvs.at(0).lease, s.lease);
}

TEST(ClusterMembership, ASecondServerWithTheSameIdWaitsForTheFirstToGo) {
  EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << etcd.log();
  etcd::Client c({{"127.0.0.1", etcd.port()}}, 5s);
  ClusterMembership first(options_for(etcd.port(), "dup"));
  ASSERT_TRUE(first.start());
  auto second_options = options_for(etcd.port(), "dup");
  second_options.value = R"({"ingest":"http://127.0.0.1:9999"})";
  ClusterMembership second(second_options);
  Status s = second.start();
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("held by another member"), std::string::npos)
      << s.error().message;
  // The first keeps its key through the second's retries.
  std::this_thread::sleep_for(1500ms);
  auto got = c.get("/statherd/test/members/dup");
  ASSERT_TRUE(got);
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, R"({"ingest":"http://127.0.0.1:8470"})");
  EXPECT_EQ(got->kvs[0].lease, first.state().lease);
  EXPECT_FALSE(second.state().registered);
  EXPECT_GE(second.state().failures, 1u);
  first.stop();  // the key goes; the second registers at its next retry
  ASSERT_TRUE(eventually([&] {
    auto r = c.get("/statherd/test/members/dup");
    return r && r->kvs.size() == 1 && r->kvs[0].value == second_options.value &&
           second.state().registered;
  }));
  EXPECT_EQ(c.get("/statherd/test/members/dup")->kvs.at(0).lease, second.state().lease);
}

TEST(ClusterMembership, ABackgroundStartNeverWaitsForEtcd) {
  // An endpoint that takes the connection and never answers: start_in_background() returns
  // at once all the same (the daemon serves and handles signals meanwhile).
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  auto hanging = options_for(ntohs(a.sin_port), "bg");
  hanging.call_deadline = 60s;  // the first attempt hangs a minute: start must not wait for it
  ClusterMembership m(hanging);
  const auto t0 = std::chrono::steady_clock::now();
  m.start_in_background();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s);
  EXPECT_EQ(m.state().failures, 0u);  // still waiting for its answer
  // The endpoint goes away (its pending connection reset): the call ends, and so does stop().
  ::close(fd);
  m.stop();
  EXPECT_FALSE(m.state().registered);

  EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << etcd.log();
  etcd::Client c({{"127.0.0.1", etcd.port()}}, 5s);
  ClusterMembership live(options_for(etcd.port(), "bg"));
  live.start_in_background();
  ASSERT_TRUE(eventually([&] {
    auto r = c.get("/statherd/test/members/bg");
    return r && r->kvs.size() == 1 && live.state().registered;
  }));
}

TEST(ClusterMembership, AKeyDeletedWhileItsLeaseLivesIsWrittenAgain) {
  EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << etcd.log();
  etcd::Client c({{"127.0.0.1", etcd.port()}}, 5s);
  ClusterMembership m(options_for(etcd.port(), "gone"));
  ASSERT_TRUE(m.start());
  const int64_t lease = m.state().lease;
  ASSERT_TRUE(c.del("/statherd/test/members/gone"));
  ASSERT_TRUE(eventually([&] {
    auto r = c.get("/statherd/test/members/gone");
    return r && r->kvs.size() == 1;
  }, 5s));
  EXPECT_EQ(c.get("/statherd/test/members/gone")->kvs.at(0).lease, lease);  // the same lease
  EXPECT_TRUE(m.state().registered);
  EXPECT_EQ(m.state().registrations, 1u);
}

TEST(ClusterMembership, StartsWithEtcdDownAndRegistersWhenItComesUp) {
  const uint16_t port = free_port();
  ClusterMembership m(options_for(port, "s3"));
  Status first = m.start();
  ASSERT_FALSE(first);  // reported at once
  EXPECT_NE(first.error().message.find("etcd unreachable"), std::string::npos)
      << first.error().message;
  EXPECT_FALSE(m.state().registered);
  EtcdProcess etcd(port);
  ASSERT_TRUE(etcd.ready()) << etcd.log();
  etcd::Client c({{"127.0.0.1", port}}, 5s);
  ASSERT_TRUE(eventually([&] {
    auto r = c.get("/statherd/test/members/s3");
    return r && r->kvs.size() == 1 && m.state().registered;
  }));
  EXPECT_EQ(m.state().registrations, 1u);
  EXPECT_GE(m.state().failures, 1u);
  m.stop();
  EXPECT_TRUE(c.get("/statherd/test/members/s3")->kvs.empty());
}

}  // namespace
}  // namespace statherd::server
