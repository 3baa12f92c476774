// The `etcd:` section of a daemon's YAML (issue #13, docs/CLUSTER.md): where the cluster's
// coordination lives and what this member calls itself. Absent: no cluster, one server, as
// before. The agent will read the same endpoints and cluster name (its own keys are not
// accepted in its file yet).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/etcd_client.h"
#include "common/yaml_util.h"

namespace statherd::cluster {

struct EtcdSettings {
  bool enabled = false;                  // the section is present
  std::vector<etcd::Endpoint> endpoints;  // endpoints (required in the section)
  std::string endpoints_text;            // as configured, for messages
  std::string cluster = "default";       // cluster: every key lives under /statherd/<cluster>/
  // Server only:
  std::string id;         // id: unique in the cluster; default the host name
  std::string advertise;  // advertise: the URL agents and servers reach this one at;
                          // default http://<listen> (the host name for a wildcard address)
  std::chrono::seconds lease_ttl{10};  // lease_ttl: how long a dead server's key outlives it
  uint32_t shards = 64;   // shards: the first map's (fixed for the cluster's life)
  uint32_t replicas = 2;  // replicas: likewise
  // dead_after: a server absent this long leaves the next map (its shards move)
  std::chrono::milliseconds dead_after{60'000};

  std::string prefix() const { return "/statherd/" + cluster + "/"; }
};

// A cluster name or member id: 1 to 64 of [A-Za-z0-9_.-], not "." or "..", so it is one
// etcd key segment and a safe part of a log line.
bool valid_name(std::string_view name);

// Reads `etcd:` from `root` into `out` (out.enabled when present). `server`: also id,
// advertise, lease_ttl, shards, replicas and dead_after. Errors at their file:line:col.
void read_etcd_section(YamlReader& r, const YAML::Node& root, EtcdSettings& out, bool server);

// A host name (labels of letters, digits, '-', '_'), an IPv4 address or an IPv6 literal.
bool valid_host(std::string_view host);

// http://HOST:PORT with HOST a name, an IPv4 address or a bracketed IPv6 one; the error says
// what is wrong.
Status check_advertise_url(const std::string& url);

// The advertise URL a server listening on `host`:`port` gets by default: its own address, or
// `hostname` when it listens on a wildcard (0.0.0.0, ::, empty).
std::string default_advertise(const std::string& listen_host, uint16_t port,
                              const std::string& hostname);

}  // namespace statherd::cluster
