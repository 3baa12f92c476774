// A client of etcd v3's JSON gateway (issue #13: the cluster's shard map, membership and
// replica leadership live in etcd; statherd implements no consensus of its own). Plain HTTP
// POSTs of JSON through common/http_client (Beast): `/v3/kv/range`, `/v3/kv/put`,
// `/v3/kv/txn`, `/v3/kv/deleterange`, `/v3/lease/grant`, `/v3/lease/keepalive`,
// `/v3/lease/revoke`, as Debian's etcd-server 3.4 serves them. In that JSON, keys and values
// are base64 and 64-bit integers are strings; this client takes and returns plain bytes and
// integers. Every call has one deadline, whatever the number of endpoints it tries. With several
// endpoints a call goes on to the next when it could not send (refused, unresolvable) and, for
// a read or an idempotent call, when the request timed out or was answered 5xx (etcd's 503 "no
// leader"); a compare-and-swap or a lease grant that was sent and not answered is an error
// saying its outcome is not known (a retry elsewhere could report a write it made itself as
// another's, or leak a lease). The endpoint that answered is tried first next time. An answer
// with etcd's error form (`{"error": ..., "code": N}`), even with status 200, is an error.
// Not thread-safe: one client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace statherd::etcd {

struct Endpoint {
  std::string host;
  uint16_t port = 2379;
};

// "http://127.0.0.1:2379" (port default 2379), or a list of them separated by commas.
// https:// is refused with a hint (this client speaks plain HTTP: keep etcd on a trusted
// network or loopback).
Result<std::vector<Endpoint>> parse_endpoints(std::string_view urls);

struct KeyValue {
  std::string key, value;
  int64_t create_revision = 0, mod_revision = 0, version = 0, lease = 0;
};

struct RangeResult {
  int64_t revision = 0;  // the store's revision when read
  std::vector<KeyValue> kvs;
};

// The outcome of a compare-and-swap: whether it took, and the store's revision after it.
struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;
  std::vector<KeyValue> current;  // when it did not take: the key's value now (empty: absent)
};

struct Lease {
  int64_t id = 0;
  int64_t ttl_s = 0;  // as etcd granted it
};

// The end of the range holding every key that starts with `prefix` (etcd's range_end).
std::string prefix_end(std::string_view prefix);

class Client {
 public:
  Client(std::vector<Endpoint> endpoints, std::chrono::milliseconds deadline);

  Result<RangeResult> get(std::string_view key);
  Result<RangeResult> get_prefix(std::string_view prefix);
  // The revision of the store after the put. lease 0: none.
  Result<int64_t> put(std::string_view key, std::string_view value, int64_t lease = 0);
  // Puts only if the key's mod_revision is `expected` (0: only if the key does not exist).
  Result<TxnResult> put_if(std::string_view key, std::string_view value,
                           int64_t expected_mod_revision, int64_t lease = 0);
  // Puts every pair (no lease), in transactions of at most 100 puts (etcd's --max-txn-ops is
  // 128 by default): each transaction whole or not at all.
  Status put_all(const std::vector<std::pair<std::string, std::string>>& kvs);
  // Deletes only if the key holds `value` (a leader giving up what it holds, not another's).
  // get_prefix("") and del_prefix("") cover every key.
  Result<TxnResult> delete_if_value(std::string_view key, std::string_view value);
  // How many keys were deleted.
  Result<int64_t> del(std::string_view key);
  Result<int64_t> del_prefix(std::string_view prefix);

  Result<Lease> grant(int64_t ttl_s);
  // Renews the lease; the TTL etcd reset it to. An expired or unknown lease is an error whose
  // message says so (`lease_expired()` tells).
  Result<int64_t> keep_alive(int64_t lease);
  Status revoke(int64_t lease);

  // "etcd at 127.0.0.1:2379" for messages: the endpoint that answered last.
  std::string where() const;

 private:
  // idempotent: may go on to the next endpoint after a request that was sent but not answered
  // (a read, a put of the same value, a keepalive, a revoke), or answered 5xx.
  Result<std::string> call(std::string_view path, const std::string& body, bool idempotent = true);
  // A /v3/kv/deleterange of this JSON request: how many keys went.
  Result<int64_t> delete_range(const std::string& request);

  std::vector<Endpoint> endpoints_;
  std::chrono::milliseconds deadline_;
  size_t current_ = 0;
};

// At most 200 bytes of `text` for a message or a log line: bytes outside printable ASCII (and
// the backslash) as \xNN, so what etcd (or whatever answers on its port) sends cannot forge
// log lines or break a terminal.
std::string printable(std::string_view text);

// Whether an error from keep_alive() says the lease is gone (expired or revoked).
bool lease_expired(const Error& e);

// etcd's JSON answers read into the types above (the client's own parsing, exposed for the
// tests and tests/fuzz/etcd_answer_fuzz.cpp). An answer is untrusted bytes: anything that is
// not the expected JSON object is an error, a field of the wrong type or badly coded base64
// reads as absent; nothing throws.
Result<RangeResult> parse_range_answer(std::string_view body);
Result<TxnResult> parse_txn_answer(std::string_view body);
Result<Lease> parse_grant_answer(std::string_view body);
// The TTL a keepalive answer gives; an error (lease_expired()) when the lease is gone.
Result<int64_t> parse_keepalive_answer(std::string_view body, int64_t lease);

}  // namespace statherd::etcd
