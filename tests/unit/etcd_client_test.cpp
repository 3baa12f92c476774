// The parts of the etcd client that need no etcd: base64 as the JSON gateway writes it, the
// endpoint list, and the range end of a prefix. tests/integration/etcd_client_itest.cpp runs
// the client against a real etcd.
#include "common/etcd_client.h"

#include <gtest/gtest.h>

#include <random>

#include "common/base64.h"

namespace statherd {
namespace {

TEST(Base64, KnownVectors) {  // RFC 4648, section 10
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
  EXPECT_EQ(base64_decode("Zm9vYmE="), "fooba");
  EXPECT_EQ(base64_decode("Zg=="), "f");
  EXPECT_EQ(base64_decode("//4A"), std::string("\xff\xfe\x00", 3));
}

TEST(Base64, RefusesWhatIsNotBase64) {
  for (const char* bad : {"Zg=", "Zg", "Z===", "Zg==Zg==", "Zm9*", "Zm=v", "====", "Zm9v\n",
                          "Zh==", "Zm9=", "Zm4vYmZ9Eve="})
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
}

TEST(Base64, RoundTripsEveryLengthAndByte) {
  std::mt19937 rng(7);
  for (size_t n = 0; n < 300; ++n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng() & 0xFF);
    auto back = base64_decode(base64_encode(s));
    ASSERT_TRUE(back.has_value()) << n;
    EXPECT_EQ(*back, s) << n;
  }
}

TEST(EtcdEndpoints, ParsesAListAndRefusesWhatItCannotSpeak) {
  auto one = etcd::parse_endpoints("http://127.0.0.1:2379");
  ASSERT_TRUE(one) << one.error().to_string();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].host, "127.0.0.1");
  EXPECT_EQ((*one)[0].port, 2379);
  auto many = etcd::parse_endpoints("http://127.0.0.1:1, http://[::1]:2/ ,http://localhost");
  ASSERT_TRUE(many) << many.error().to_string();
  ASSERT_EQ(many->size(), 3u);
  EXPECT_EQ((*many)[1].host, "::1");
  EXPECT_EQ((*many)[1].port, 2);
  EXPECT_EQ((*many)[2].port, 2379);
  for (const char* bad : {"", "https://127.0.0.1:2379", "127.0.0.1:2379", "http://a:1/v3",
                          "http://u@a:1", "http://127.0.0.1:99999", "http://a:1,"}) {
    auto r = etcd::parse_endpoints(bad);
    EXPECT_FALSE(r) << bad;
  }
  auto https = etcd::parse_endpoints("https://e:2379");
  ASSERT_FALSE(https);
  EXPECT_NE(https.error().message.find("https"), std::string::npos);
}

TEST(EtcdPrefix, RangeEndIsTheNextKeyAfterEveryKeyWithThePrefix) {
  EXPECT_EQ(etcd::prefix_end("/statherd/"), "/statherd0");
  EXPECT_EQ(etcd::prefix_end("a\xff"), "b");
  EXPECT_EQ(etcd::prefix_end("\xff\xff"), std::string(1, '\0'));
  EXPECT_EQ(etcd::prefix_end(""), std::string(1, '\0'));
}

TEST(EtcdAnswers, ReadWhatEtcdWrites) {
  auto r = etcd::parse_range_answer(
      R"({"header":{"revision":"7"},"kvs":[{"key":"L2E=","value":"MQ==","mod_revision":"5",)"
      R"("lease":"9"}],"count":"1"})");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->revision, 7);
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].key, "/a");
  EXPECT_EQ(r->kvs[0].value, "1");
  EXPECT_EQ(r->kvs[0].mod_revision, 5);
  EXPECT_EQ(r->kvs[0].lease, 9);
  auto ka = etcd::parse_keepalive_answer(R"({"result":{"ID":"42","TTL":"10"}})", 42);
  ASSERT_TRUE(ka) << ka.error().to_string();
  EXPECT_EQ(*ka, 10);
  EXPECT_TRUE(
      etcd::lease_expired(etcd::parse_keepalive_answer(R"({"result":{"ID":"42"}})", 42).error()));
}

TEST(EtcdAnswers, RefuseOrIgnoreWhatIsNotEtcds) {
  // Integers past int64 read as 0, not wrapped; entries without a key are left out.
  auto r = etcd::parse_range_answer(
      R"({"header":{"revision":18446744073709551615},"kvs":[{},{"value":"MQ=="},{"key":"%%"},)"
      R"({"key":"L2E=","mod_revision":9223372036854775808}]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->revision, 0);
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].mod_revision, 0);
  // etcd's error form is an error even in a 200 answer; a lease-not-found one says so.
  EXPECT_FALSE(etcd::parse_range_answer(R"({"error":"etcdserver: no leader","code":14})"));
  EXPECT_TRUE(etcd::lease_expired(
      etcd::parse_keepalive_answer(R"({"error":"etcdserver: requested lease not found"})", 1)
          .error()));
  // A keepalive answer for another lease, or none, renews nothing.
  auto other = etcd::parse_keepalive_answer(R"({"result":{"ID":"999","TTL":"10"}})", 1);
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message.find("999"), std::string::npos);
  EXPECT_FALSE(etcd::parse_keepalive_answer("{}", 1));
  EXPECT_FALSE(etcd::parse_keepalive_answer(R"({"result":[]})", 1));
  // A grant without a usable TTL is no lease.
  EXPECT_FALSE(etcd::parse_grant_answer(R"({"ID":"5","TTL":"0"})"));
  EXPECT_FALSE(etcd::parse_grant_answer(R"({"ID":"5","TTL":"-3"})"));
  EXPECT_TRUE(etcd::parse_grant_answer(R"({"ID":"5","TTL":"3"})"));
}

TEST(EtcdAnswers, DeeplyNestedErrorsDoNotCrash) {
  std::string deep = R"({"error":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_FALSE(etcd::parse_keepalive_answer(deep, 1));
  EXPECT_FALSE(etcd::parse_range_answer(deep));
  EXPECT_FALSE(etcd::parse_txn_answer(deep));
  EXPECT_FALSE(etcd::parse_grant_answer(deep));
}

}  // namespace
}  // namespace statherd
