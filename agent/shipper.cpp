#include "agent/shipper.h"

#include <nlohmann/json.hpp>

#include "common/http_client.h"
#include "common/wire.h"

namespace statherd::agent {

Result<ServerUrl> parse_server_url(std::string_view url) {
  const std::string shown(url);
  if (url.rfind("https://", 0) == 0)
    return make_error("server URL " + shown + " uses https, which the agent does not support",
                      "use http://host:port (run a TLS-terminating proxy beside the agent if the "
                      "link must be encrypted)");
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0)
    return make_error("server URL " + shown + " does not start with http://",
                      "write it as http://host:port[/path], e.g. http://127.0.0.1:8470");
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  ServerUrl out;
  if (slash != std::string_view::npos) {
    out.path_prefix = std::string(rest.substr(slash));
    while (!out.path_prefix.empty() && out.path_prefix.back() == '/') out.path_prefix.pop_back();
  }
  if (Status st = parse_http_authority(authority, "server URL " + shown,
                                       "http://127.0.0.1:8470", out.host, out.port);
      !st)
    return st.error();
  return out;
}

const char* ship_outcome_name(ShipOutcome o) {
  switch (o) {
    case ShipOutcome::Acked: return "acked";
    case ShipOutcome::RetryLater: return "retry-later";
    case ShipOutcome::Unauthorized: return "unauthorized";
    case ShipOutcome::Malformed: return "malformed";
    case ShipOutcome::TooLarge: return "too-large";
  }
  return "?";
}

namespace {

bool carries_malformed_verdict(std::string_view body) {
  const auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  auto it = j.find("verdict");
  return it != j.end() && it->is_string() && it->get<std::string>() == kMalformedVerdict;
}

}  // namespace

ShipOutcome classify_http_status(int status, std::string_view body) {
  if (status == 200) return ShipOutcome::Acked;
  if (status == 401 || status == 403) return ShipOutcome::Unauthorized;
  if (status == 413) return ShipOutcome::TooLarge;
  if (status == 400 && carries_malformed_verdict(body)) return ShipOutcome::Malformed;
  return ShipOutcome::RetryLater;  // 404, 405, 408, 409, 429, 5xx, a proxy's 400, anything else
}

namespace {

HttpRequest ingest_request(const HttpSenderOptions& o, uint64_t seq, std::string_view body) {
  HttpRequest req;
  req.target = {o.url.host, o.url.port, o.url.ingest_target()};
  req.method = HttpMethod::Post;
  req.body.assign(body.data(), body.size());
  req.headers = {{"User-Agent", "statherd-agent"},
                 {"Authorization", "Bearer " + o.token},
                 {"Content-Type", std::string(kBatchContentType)},
                 {"X-Statherd-Agent", o.agent_id},
                 {"X-Statherd-Seq", std::to_string(seq)}};
  req.max_response_body = o.max_response_bytes;
  return req;
}

// The agent's log wording for a failed step ("read response: ...").
std::string step_label(HttpStep step, const std::string& host) {
  switch (step) {
    case HttpStep::Resolve: return "resolve " + host;
    case HttpStep::Connect: return "connect";
    case HttpStep::Send: return "send";
    case HttpStep::ReadHeader:
    case HttpStep::ReadBody: return "read response";
  }
  return "?";
}

}  // namespace

ShipResult HttpBatchSender::send(uint64_t seq, std::string_view encoded_batch) {
  HttpExchangeResult r =
      http_exchange(ingest_request(options_, seq, encoded_batch), options_.timeout);
  if (r.ok()) return {classify_http_status(r.status, r.body), r.status, r.body.substr(0, 512)};
  if (r.failure == HttpFailure::Timeout && r.step == HttpStep::Resolve)
    return {ShipOutcome::RetryLater, 0,
            "no answer from " + options_.url.host + " within the deadline"};
  if (r.failure == HttpFailure::ClientError)
    return {ShipOutcome::RetryLater, 0, r.error};
  return {ShipOutcome::RetryLater, 0, step_label(r.step, options_.url.host) + ": " + r.cause};
}

}  // namespace statherd::agent
