#include "common/etcd_config.h"

#include <set>

namespace statherd::cluster {

namespace {

constexpr const char* kNameAllowed = "1 to 64 of A-Z a-z 0-9 _ . - (not . or ..)";
constexpr int64_t kMinLeaseTtl = 2, kMaxLeaseTtl = 300;

void read_name(YamlReader& r, const YAML::Node& n, const std::string& key, std::string& out) {
  std::string v;
  if (!r.get_string(n, key, v, "etcd")) return;
  if (!valid_name(v)) return r.error_at(n[key], "etcd." + key, "not a valid name", kNameAllowed);
  out = v;
}

// endpoints: a list of URLs, or one string of them separated by commas.
void read_endpoints(YamlReader& r, const YAML::Node& section, const YAML::Node& n,
                    EtcdSettings& out) {
  const YAML::Node value = n["endpoints"];
  if (!value) {
    return r.error_at(section, "etcd.endpoints", "missing: the etcd section needs its endpoints",
                      "endpoints: [http://127.0.0.1:2379] (several for an etcd cluster)");
  }
  std::string text;
  if (value.IsSequence()) {
    std::vector<std::string> urls;
    if (!r.get_string_list(n, "endpoints", urls, "etcd")) return;
    if (urls.empty())
      return r.error_at(value, "etcd.endpoints", "an empty list: no etcd endpoint given",
                        "endpoints: [http://127.0.0.1:2379]");
    for (const auto& u : urls) {
      if (u.find(',') != std::string::npos)
        return r.error_at(value, "etcd.endpoints", "a list item holds a comma: \"" + u + "\"",
                          "one URL per list item");
      text += (text.empty() ? "" : ",") + u;
    }
  } else if (!r.get_string(n, "endpoints", text, "etcd")) {
    return;
  }
  auto parsed = etcd::parse_endpoints(text);
  if (!parsed) return r.error_at(value, "etcd.endpoints", parsed.error().message, parsed.error().hint);
  out.endpoints = std::move(*parsed);
  out.endpoints_text = text;
}

}  // namespace

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool valid_host(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  if (host.find(':') != std::string_view::npos) {  // an IPv6 literal (brackets stripped)
    for (char c : host)
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
            c == ':' || c == '.'))
        return false;
    return true;
  }
  size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return label > 0 || host.size() > 1;  // "name." (fully qualified) is fine, "." is not
}

Status check_advertise_url(const std::string& url) {
  const std::string what = "advertise URL \"" + etcd::printable(url) + "\"";
  const std::string hint = "http://HOST:PORT that agents and the other servers can reach";
  if (url.rfind("http://", 0) != 0) return make_error(what + ": expected http://HOST:PORT", hint);
  std::string_view rest(url);
  rest.remove_prefix(7);
  if (rest.find('/') != std::string_view::npos || rest.find('@') != std::string_view::npos ||
      rest.find_first_of("?# ") != std::string_view::npos)
    return make_error(what + ": give the address only (no path, user or query)", hint);
  auto hp = parse_host_port(rest);
  if (!hp) return make_error(what + ": " + hp.error().message, hint);
  if (hp->host == "0.0.0.0" || hp->host == "::")
    return make_error(what + ": a wildcard address is not one others can reach", hint);
  if (!valid_host(hp->host))
    return make_error(what + ": the host is not a host name or an IP address",
                      "letters, digits, '-', '.' (or an IP address); " + hint);
  return Ok{};
}

std::string default_advertise(const std::string& listen_host, uint16_t port,
                              const std::string& hostname) {
  std::string host = listen_host;
  if (host.empty() || host == "0.0.0.0" || host == "::") host = hostname;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(port);
}

void read_etcd_section(YamlReader& r, const YAML::Node& root, EtcdSettings& out, bool server) {
  YAML::Node n = r.get_map(root, "etcd");
  if (!n) return;
  out.enabled = true;
  read_endpoints(r, root["etcd"], n, out);
  read_name(r, n, "cluster", out.cluster);
  std::set<std::string> keys = {"endpoints", "cluster"};
  if (server) {
    read_name(r, n, "id", out.id);
    if (r.get_string(n, "advertise", out.advertise, "etcd"))
      if (Status s = check_advertise_url(out.advertise); !s)
        r.error_at(n["advertise"], "etcd.advertise", s.error().message, s.error().hint);
    std::chrono::milliseconds ttl = out.lease_ttl;
    if (r.get_duration(n, "lease_ttl", ttl, "etcd")) {
      if (ttl.count() % 1000 != 0 || ttl.count() < kMinLeaseTtl * 1000 ||
          ttl.count() > kMaxLeaseTtl * 1000)
        r.error_at(n["lease_ttl"], "etcd.lease_ttl", "out of range",
                   "whole seconds from 2s to 5m (default 10s)");
      else
        out.lease_ttl = std::chrono::duration_cast<std::chrono::seconds>(ttl);
    }
    int64_t count = out.shards;
    // At most 4096: a round reads an epoch's leader keys in one answer (~190 bytes a key).
    if (r.get_int(n, "shards", count, 1, 4096, "etcd")) out.shards = static_cast<uint32_t>(count);
    count = out.replicas;
    if (r.get_int(n, "replicas", count, 1, 16, "etcd")) out.replicas = static_cast<uint32_t>(count);
    std::chrono::milliseconds dead = out.dead_after;
    if (r.get_duration(n, "dead_after", dead, "etcd")) {
      if (dead < out.lease_ttl || dead > std::chrono::hours(24))
        r.error_at(n["dead_after"], "etcd.dead_after",
                   "out of range: under lease_ttl (" + std::to_string(out.lease_ttl.count()) +
                       "s) or over a day",
                   "from lease_ttl to 1d (default 60s)");
      else
        out.dead_after = dead;
    }
    keys.insert({"id", "advertise", "lease_ttl", "shards", "replicas", "dead_after"});
  }
  r.check_keys(n, keys, "etcd");
}

}  // namespace statherd::cluster
