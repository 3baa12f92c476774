#include "common/etcd_client.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "common/http_client.h"

namespace statherd::etcd {

using json = nlohmann::json;

namespace {

const char* const kLeaseGone = "etcd: the lease has expired or was revoked";
constexpr size_t kMaxAnswer = 4u << 20;  // a shard map of 1,024 members is ~20 KB

// etcd writes 64-bit integers as JSON strings, and leaves out fields holding their default.
int64_t int_field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_number_unsigned())  // a value past INT64_MAX is not an etcd integer: 0
    return it->get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)
               ? static_cast<int64_t>(it->get<uint64_t>())
               : 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (!it->is_string()) return 0;
  const std::string& s = it->get_ref<const std::string&>();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() ? v : 0;
}

std::string b64_field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return {};
  auto decoded = base64_decode(it->get_ref<const std::string&>());
  return decoded ? *decoded : std::string();
}

std::vector<KeyValue> kvs_of(const json& j) {
  std::vector<KeyValue> out;
  auto it = j.find("kvs");
  if (it == j.end() || !it->is_array()) return out;
  for (const json& kv : *it) {
    if (!kv.is_object()) continue;
    auto key = kv.find("key");
    if (key == kv.end() || !key->is_string()) continue;  // not a key-value: left out
    auto decoded = base64_decode(key->get_ref<const std::string&>());
    if (!decoded || decoded->empty()) continue;
    KeyValue x;
    x.key = std::move(*decoded);
    x.value = b64_field(kv, "value");
    x.create_revision = int_field(kv, "create_revision");
    x.mod_revision = int_field(kv, "mod_revision");
    x.version = int_field(kv, "version");
    x.lease = int_field(kv, "lease");
    out.push_back(std::move(x));
  }
  return out;
}

int64_t revision_of(const json& j) {
  auto h = j.find("header");
  return h != j.end() && h->is_object() ? int_field(*h, "revision") : 0;
}

std::string string_field(const json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The message of the gateway's error form ({"error": "...", "message": "...", "code": N}; the
// error an object in some versions), or "" when `j` has none. Never dumps what it was sent.
std::string gateway_error(const json& j) {
  auto err = j.find("error");
  if (err == j.end()) return {};
  std::string msg = err->is_string() ? err->get<std::string>() : std::string();
  if (err->is_object()) msg = string_field(*err, "message");
  return msg.empty() ? std::string("(no message)") : printable(msg);
}

// The body's JSON object for `path`; an error for anything else and for the error form (even
// in a 200 answer), kLeaseGone when that says the lease is gone.
Result<json> parse_object(std::string_view body, std::string_view path) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_object())
    return make_error("etcd's answer to " + std::string(path) +
                      " is not a JSON object: " + printable(body));
  if (std::string msg = gateway_error(j); !msg.empty()) {
    if (msg.find("lease not found") != std::string::npos) return make_error(kLeaseGone);
    return make_error("etcd refused " + std::string(path) + ": " + msg);
  }
  return j;
}

// The request for every key starting with `prefix` ("": every key, etcd's key "\0").
json prefix_range(std::string_view prefix) {
  return {{"key", base64_encode(prefix.empty() ? std::string_view("\0", 1) : prefix)},
          {"range_end", base64_encode(prefix_end(prefix))}};
}

TxnResult txn_result(const json& j) {
  TxnResult r;
  auto ok = j.find("succeeded");
  r.succeeded = ok != j.end() && ok->is_boolean() && ok->get<bool>();
  r.revision = revision_of(j);
  auto rs = j.find("responses");
  if (rs != j.end() && rs->is_array())
    for (const json& one : *rs) {
      if (!one.is_object()) continue;
      auto range = one.find("response_range");
      if (range != one.end() && range->is_object()) r.current = kvs_of(*range);
    }
  return r;
}

}  // namespace

Result<std::vector<Endpoint>> parse_endpoints(std::string_view urls) {
  std::vector<Endpoint> out;
  size_t at = 0;
  while (at <= urls.size()) {
    size_t comma = urls.find(',', at);
    if (comma == std::string_view::npos) comma = urls.size();
    std::string_view url = urls.substr(at, comma - at);
    while (!url.empty() && url.front() == ' ') url.remove_prefix(1);
    while (!url.empty() && url.back() == ' ') url.remove_suffix(1);
    at = comma + 1;
    const std::string what = "etcd endpoint \"" + std::string(url) + "\"";
    if (url.rfind("https://", 0) == 0)
      return make_error(what + ": https is not supported",
                        "statherd speaks plain HTTP to etcd: use http:// on loopback or a trusted "
                        "network");
    if (url.rfind("http://", 0) != 0)
      return make_error(what + ": expected http://HOST:PORT", "e.g. http://127.0.0.1:2379");
    url.remove_prefix(7);
    if (!url.empty() && url.back() == '/') url.remove_suffix(1);
    if (url.find('/') != std::string_view::npos)
      return make_error(what + ": give the address only, without a path",
                        "e.g. http://127.0.0.1:2379");
    if (url.find('@') != std::string_view::npos)
      return make_error(what + ": user info (user@host) is not supported");
    Endpoint e;
    if (Status s = parse_http_authority(url, what, "http://127.0.0.1:2379", e.host, e.port); !s)
      return s.error();
    out.push_back(std::move(e));
  }
  if (out.empty()) return make_error("no etcd endpoint given", "e.g. http://127.0.0.1:2379");
  return out;
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<uint8_t>(end.back()) < 0xFF) {
      end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key (etcd's "\0" range end)
}

std::string printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char ch : text.substr(0, 200)) {
    if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
      out += static_cast<char>(ch);
    } else {
      out += "\\x";
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
  if (text.size() > 200) out += "...";
  return out;
}

bool lease_expired(const Error& e) {
  return e.message == kLeaseGone;
}

Client::Client(std::vector<Endpoint> endpoints, std::chrono::milliseconds deadline)
    : endpoints_(std::move(endpoints)), deadline_(deadline) {}

std::string Client::where() const {
  if (endpoints_.empty()) return "etcd (no endpoint)";
  const Endpoint& e = endpoints_[current_ % endpoints_.size()];
  return "etcd at " + e.host + ":" + std::to_string(e.port);
}

Result<std::string> Client::call(std::string_view path, const std::string& body, bool idempotent) {
  if (endpoints_.empty()) return make_error("no etcd endpoint configured");
  // One deadline for the whole call, whatever the number of endpoints tried.
  const auto until = std::chrono::steady_clock::now() + deadline_;
  std::string failures;
  for (size_t tried = 0; tried < endpoints_.size(); ++tried) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    // Each endpoint but the last gets its share of the deadline, so one that hangs (a member
    // cut off from the majority holds requests) leaves time for the others.
    const bool last = tried + 1 == endpoints_.size();
    const auto share = std::max<std::chrono::milliseconds>(
        deadline_ / static_cast<int64_t>(endpoints_.size()), std::chrono::milliseconds(100));
    // A write gets all that is left: sent and not answered, it is not retried elsewhere anyway
    // (the next call starts at the next endpoint), and a healthy etcd's slow fsync must not
    // fail it at a fraction of the deadline.
    const auto budget = last || !idempotent ? left : std::min(left, share);
    const size_t i = (current_ + tried) % endpoints_.size();
    HttpRequest req;
    req.target.host = endpoints_[i].host;
    req.target.port = endpoints_[i].port;
    req.target.target = std::string(path);
    req.method = HttpMethod::Post;
    req.body = body;
    req.headers.emplace_back("Content-Type", "application/json");
    req.max_response_body = kMaxAnswer;
    HttpExchangeResult r = http_exchange(std::move(req), budget);
    const std::string at = endpoints_[i].host + ":" + std::to_string(endpoints_[i].port);
    if (!r.ok()) {
      // Not sent (resolve, connect): try the next endpoint. Sent but not answered: a write may
      // have been applied, so only a read or an idempotent call goes on to the next one.
      const bool sent = r.step != HttpStep::Resolve && r.step != HttpStep::Connect &&
                        r.failure != HttpFailure::Refused;
      failures += (failures.empty() ? "" : "; ") + at + ": " + r.error;
      if (sent && !idempotent) {
        current_ = i + 1;  // the next call starts at another endpoint
        return make_error("etcd at " + at + " did not answer " + std::string(path) +
                          " in time; whether it was applied is not known (" + r.error + ")");
      }
      continue;
    }
    if (r.status >= 500 && idempotent) {  // e.g. 503 "no leader": another member may serve
      failures += (failures.empty() ? "" : "; ") + at + ": answered " + std::to_string(r.status);
      continue;
    }
    current_ = i;
    if (r.status != 200) {
      auto j = json::parse(r.body, nullptr, false);
      std::string msg = j.is_object() ? gateway_error(j) : std::string();
      if (msg.empty()) msg = printable(r.body);
      if (msg.find("lease not found") != std::string::npos) return make_error(kLeaseGone);
      return make_error("etcd at " + at + " answered " + std::to_string(r.status) + " to " +
                        std::string(path) + ": " + msg);
    }
    return std::move(r.body);
  }
  return make_error("etcd unreachable: " + (failures.empty() ? "the deadline passed" : failures),
                    "check the etcd endpoints (etcd.endpoints) and that etcd runs");
}

Result<RangeResult> parse_range_answer(std::string_view body) {
  auto j = parse_object(body, "/v3/kv/range");
  if (!j) return j.error();
  return RangeResult{revision_of(*j), kvs_of(*j)};
}

Result<TxnResult> parse_txn_answer(std::string_view body) {
  auto j = parse_object(body, "/v3/kv/txn");
  if (!j) return j.error();
  return txn_result(*j);
}

Result<Lease> parse_grant_answer(std::string_view body) {
  auto j = parse_object(body, "/v3/lease/grant");
  if (!j) return j.error();
  Lease l{int_field(*j, "ID"), int_field(*j, "TTL")};
  if (l.id == 0 || l.ttl_s <= 0)
    return make_error("etcd granted no lease: " + printable(body));
  return l;
}

Result<int64_t> parse_keepalive_answer(std::string_view body, int64_t lease) {
  auto j = parse_object(body, "/v3/lease/keepalive");
  if (!j) return j.error();
  // A stream in gRPC; through the gateway, one request in the body gets one "result".
  auto result = j->find("result");
  if (result == j->end() || !result->is_object())
    return make_error("etcd's answer to /v3/lease/keepalive has no result: " + printable(body));
  const int64_t id = int_field(*result, "ID");
  if (id != lease)
    return make_error("etcd's answer to /v3/lease/keepalive is for lease " + std::to_string(id) +
                      ", not " + std::to_string(lease));
  const int64_t ttl = int_field(*result, "TTL");
  if (ttl <= 0) return make_error(kLeaseGone);  // etcd gives no TTL for a lease it has not got
  return ttl;
}

Result<RangeResult> Client::get(std::string_view key) {
  json req = {{"key", base64_encode(key)}};
  auto body = call("/v3/kv/range", req.dump());
  if (!body) return body.error();
  return parse_range_answer(*body);
}

Result<RangeResult> Client::get_prefix(std::string_view prefix) {
  auto body = call("/v3/kv/range", prefix_range(prefix).dump());
  if (!body) return body.error();
  return parse_range_answer(*body);
}

Result<int64_t> Client::put(std::string_view key, std::string_view value, int64_t lease) {
  json req = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease != 0) req["lease"] = std::to_string(lease);
  auto body = call("/v3/kv/put", req.dump());
  if (!body) return body.error();
  auto j = parse_object(*body, "/v3/kv/put");
  if (!j) return j.error();
  return revision_of(*j);
}

Result<TxnResult> Client::put_if(std::string_view key, std::string_view value,
                                 int64_t expected_mod_revision, int64_t lease) {
  const std::string k = base64_encode(key);
  json put = {{"key", k}, {"value", base64_encode(value)}};
  if (lease != 0) put["lease"] = std::to_string(lease);
  json req = {{"compare", json::array({{{"key", k},
                                        {"target", "MOD"},
                                        {"result", "EQUAL"},
                                        {"mod_revision", std::to_string(expected_mod_revision)}}})},
              {"success", json::array({{{"request_put", put}}})},
              {"failure", json::array({{{"request_range", {{"key", k}}}}})}};
  auto body = call("/v3/kv/txn", req.dump(), false);
  if (!body) return body.error();
  return parse_txn_answer(*body);
}

Status Client::put_all(const std::vector<std::pair<std::string, std::string>>& kvs) {
  constexpr size_t kPerTxn = 100;
  for (size_t first = 0; first < kvs.size(); first += kPerTxn) {
    json ops = json::array();
    for (size_t i = first; i < std::min(kvs.size(), first + kPerTxn); ++i)
      ops.push_back({{"request_put",
                      {{"key", base64_encode(kvs[i].first)}, {"value", base64_encode(kvs[i].second)}}}});
    json req = {{"compare", json::array()}, {"success", std::move(ops)}};
    auto body = call("/v3/kv/txn", req.dump(), true);  // the same values again: harmless
    if (!body) return body.error();
    auto answer = parse_txn_answer(*body);
    if (!answer) return answer.error();
  }
  return Ok{};
}

Result<TxnResult> Client::delete_if_value(std::string_view key, std::string_view value) {
  const std::string k = base64_encode(key);
  json req = {{"compare", json::array({{{"key", k},
                                        {"target", "VALUE"},
                                        {"result", "EQUAL"},
                                        {"value", base64_encode(value)}}})},
              {"success", json::array({{{"request_delete_range", {{"key", k}}}}})},
              {"failure", json::array({{{"request_range", {{"key", k}}}}})}};
  auto body = call("/v3/kv/txn", req.dump(), false);
  if (!body) return body.error();
  return parse_txn_answer(*body);
}

Result<int64_t> Client::delete_range(const std::string& request) {
  auto body = call("/v3/kv/deleterange", request);
  if (!body) return body.error();
  auto j = parse_object(*body, "/v3/kv/deleterange");
  if (!j) return j.error();
  return int_field(*j, "deleted");
}

Result<int64_t> Client::del(std::string_view key) {
  return delete_range(json{{"key", base64_encode(key)}}.dump());
}

Result<int64_t> Client::del_prefix(std::string_view prefix) {
  return delete_range(prefix_range(prefix).dump());
}

Result<Lease> Client::grant(int64_t ttl_s) {
  json req = {{"TTL", std::to_string(ttl_s)}};
  auto body = call("/v3/lease/grant", req.dump(), false);  // a retry elsewhere leaks a lease
  if (!body) return body.error();
  return parse_grant_answer(*body);
}

Result<int64_t> Client::keep_alive(int64_t lease) {
  json req = {{"ID", std::to_string(lease)}};
  auto body = call("/v3/lease/keepalive", req.dump());
  if (!body) return body.error();
  return parse_keepalive_answer(*body, lease);
}

Status Client::revoke(int64_t lease) {
  json req = {{"ID", std::to_string(lease)}};
  auto body = call("/v3/lease/revoke", req.dump());
  if (!body) return body.error();
  return Ok{};
}

}  // namespace statherd::etcd
