// statherd's etcd client (common/etcd_client.h) against a real etcd (Debian's etcd-server,
// tests/integration/etcd_process.h: free loopback ports, a temp data dir, stopped by its pid).
// Label integration: `make test` runs it; scripts/install-deps.sh installs etcd-server.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "common/etcd_client.h"
#include "common/http_client.h"
#include "tests/integration/etcd_process.h"

namespace statherd {
namespace {

using itest::EtcdProcess;
using itest::free_port;

using namespace std::chrono_literals;

class EtcdClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { etcd_ = new EtcdProcess(); }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(etcd_->ready()) << "etcd did not start (is Debian's etcd-server installed? "
                                   "scripts/install-deps.sh test)\n"
                                << etcd_->log();
  }
  etcd::Client client() { return etcd::Client({{"127.0.0.1", etcd_->port()}}, 5s); }
  static EtcdProcess* etcd_;
};
EtcdProcess* EtcdClientTest::etcd_ = nullptr;

TEST_F(EtcdClientTest, PutGetPrefixAndDelete) {
  etcd::Client c = client();
  const std::string bin("/k\x00\xff", 4);  // keys and values are bytes
  auto r1 = c.put("/t1/a", "one");
  ASSERT_TRUE(r1) << r1.error().to_string();
  auto r2 = c.put("/t1/b", std::string("two\x00\n", 5));
  ASSERT_TRUE(r2) << r2.error().to_string();
  EXPECT_GT(*r2, *r1);
  ASSERT_TRUE(c.put("/t1" + bin, "bin"));
  ASSERT_TRUE(c.put("/t10", "not under /t1/"));

  auto one = c.get("/t1/b");
  ASSERT_TRUE(one) << one.error().to_string();
  ASSERT_EQ(one->kvs.size(), 1u);
  EXPECT_EQ(one->kvs[0].value, std::string("two\x00\n", 5));
  EXPECT_EQ(one->kvs[0].mod_revision, *r2);
  EXPECT_EQ(one->kvs[0].version, 1);
  EXPECT_GE(one->revision, *r2);

  auto all = c.get_prefix("/t1/");
  ASSERT_TRUE(all) << all.error().to_string();
  ASSERT_EQ(all->kvs.size(), 3u);  // sorted by key, /t10 left out
  EXPECT_EQ(all->kvs[0].key, "/t1/a");
  EXPECT_EQ(all->kvs[1].key, "/t1/b");
  EXPECT_EQ(all->kvs[2].key, "/t1" + bin);

  auto absent = c.get("/t1/none");
  ASSERT_TRUE(absent);
  EXPECT_TRUE(absent->kvs.empty());

  auto every = c.get_prefix("");  // every key
  ASSERT_TRUE(every) << every.error().to_string();
  EXPECT_GE(every->kvs.size(), 4u);

  auto d = c.del("/t1/a");
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, 1);
  auto dp = c.del_prefix("/t1/");
  ASSERT_TRUE(dp);
  EXPECT_EQ(*dp, 2);
  auto left = c.get_prefix("/t1");
  ASSERT_TRUE(left);
  ASSERT_EQ(left->kvs.size(), 1u);
  EXPECT_EQ(left->kvs[0].key, "/t10");
}

TEST_F(EtcdClientTest, PutIfTakesOnlyOnTheExpectedRevision) {
  etcd::Client c = client();
  auto first = c.put_if("/t2/epoch", "1", 0);  // 0: only if absent
  ASSERT_TRUE(first) << first.error().to_string();
  EXPECT_TRUE(first->succeeded);
  auto again = c.put_if("/t2/epoch", "other", 0);  // exists now: refused, current value given
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->succeeded);
  ASSERT_EQ(again->current.size(), 1u);
  EXPECT_EQ(again->current[0].value, "1");
  const int64_t rev = again->current[0].mod_revision;
  EXPECT_EQ(rev, first->revision);

  auto stale = c.put_if("/t2/epoch", "2", rev - 1);
  ASSERT_TRUE(stale);
  EXPECT_FALSE(stale->succeeded);
  auto next = c.put_if("/t2/epoch", "2", rev);
  ASSERT_TRUE(next);
  EXPECT_TRUE(next->succeeded);
  EXPECT_EQ(c.get("/t2/epoch")->kvs.at(0).value, "2");

  auto wrong = c.delete_if_value("/t2/epoch", "1");
  ASSERT_TRUE(wrong);
  EXPECT_FALSE(wrong->succeeded);
  EXPECT_EQ(c.get("/t2/epoch")->kvs.size(), 1u);
  auto right = c.delete_if_value("/t2/epoch", "2");
  ASSERT_TRUE(right);
  EXPECT_TRUE(right->succeeded);
  EXPECT_TRUE(c.get("/t2/epoch")->kvs.empty());
}

TEST_F(EtcdClientTest, LeaseKeepsItsKeysUntilRevokedOrExpired) {
  etcd::Client c = client();
  auto lease = c.grant(30);
  ASSERT_TRUE(lease) << lease.error().to_string();
  EXPECT_NE(lease->id, 0);
  EXPECT_EQ(lease->ttl_s, 30);
  ASSERT_TRUE(c.put("/t3/member", "a", lease->id));
  EXPECT_EQ(c.get("/t3/member")->kvs.at(0).lease, lease->id);
  auto ttl = c.keep_alive(lease->id);
  ASSERT_TRUE(ttl) << ttl.error().to_string();
  EXPECT_EQ(*ttl, 30);
  ASSERT_TRUE(c.revoke(lease->id));
  EXPECT_TRUE(c.get("/t3/member")->kvs.empty());  // revoking deletes the lease's keys
  auto gone = c.keep_alive(lease->id);
  ASSERT_FALSE(gone);
  EXPECT_TRUE(etcd::lease_expired(gone.error())) << gone.error().to_string();

  // A short lease not renewed: its key goes when it expires (etcd's minimum TTL is ~2 s).
  auto brief = c.grant(2);
  ASSERT_TRUE(brief);
  ASSERT_TRUE(c.put("/t3/brief", "b", brief->id));
  const auto until = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < until && !c.get("/t3/brief")->kvs.empty())
    std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(c.get("/t3/brief")->kvs.empty());
  EXPECT_TRUE(etcd::lease_expired(c.keep_alive(brief->id).error()));
}

TEST_F(EtcdClientTest, UnreachableEndpointsAreSkippedAndNamed) {
  const uint16_t dead = free_port();  // nothing listens there
  etcd::Client c({{"127.0.0.1", dead}, {"127.0.0.1", etcd_->port()}}, 5s);
  auto r = c.put("/t4/x", "y");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(c.where(), "etcd at 127.0.0.1:" + std::to_string(etcd_->port()));
  etcd::Client none({{"127.0.0.1", dead}}, 2s);
  auto e = none.get("/t4/x");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("etcd unreachable"), std::string::npos) << e.error().message;
  EXPECT_NE(e.error().message.find(std::to_string(dead)), std::string::npos);
}

// A TCP port that takes connections (the kernel's backlog) and never answers: an etcd member
// cut off from its majority holds requests like this.
class HangingPort {
 public:
  HangingPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(fd_, 64) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      return;
    port_ = ntohs(a.sin_port);
  }
  ~HangingPort() {
    if (fd_ >= 0) ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

TEST_F(EtcdClientTest, AHangingFirstEndpointLeavesTimeForTheNext) {
  HangingPort hang;
  ASSERT_NE(hang.port(), 0);
  etcd::Client c({{"127.0.0.1", hang.port()}, {"127.0.0.1", etcd_->port()}}, 2s);
  // A read: the hanging one gets half the deadline, the live one answers in the rest (given
  // the whole deadline, the hanging one left nothing for it: the read failed).
  auto r = c.get("/t5/x");
  ASSERT_TRUE(r) << r.error().to_string();
  // A lease grant sent to the hanging one: its outcome is unknown, so it is not retried
  // elsewhere, but the next call starts at the other endpoint instead of hanging again.
  etcd::Client w({{"127.0.0.1", hang.port()}, {"127.0.0.1", etcd_->port()}}, 2s);
  auto unknown = w.grant(10);
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("whether it was applied is not known"),
            std::string::npos)
      << unknown.error().message;
  auto lease = w.grant(10);
  ASSERT_TRUE(lease) << lease.error().to_string();
  EXPECT_TRUE(w.revoke(lease->id));
}

}  // namespace
}  // namespace statherd
