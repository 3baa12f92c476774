#include "agent/reload.h"

#include "common/log.h"

namespace statherd::agent {

ReloadableSender::ReloadableSender(HttpSenderOptions options, WallClockMs wall_ms)
    : options_(std::move(options)),
      sender_(std::make_unique<HttpBatchSender>(options_)),
      wall_ms_(std::move(wall_ms)) {}

ShipResult ReloadableSender::send(uint64_t seq, std::string_view encoded_batch) {
  last_ = sender_->send(seq, encoded_batch);
  has_last_ = true;
  last_ms_ = wall_ms_();
  return last_;
}

void ReloadableSender::reconfigure(HttpSenderOptions options) {
  options_ = std::move(options);
  sender_ = std::make_unique<HttpBatchSender>(options_);
}

void ReloadableSender::set_timeout(std::chrono::milliseconds t) {
  options_.timeout = t;
  sender_->set_timeout(t);
}

namespace {

template <typename T>
void keep_if_changed(const char* key, const T& running, T& next, const std::string& running_text,
                     const std::string& next_text, std::vector<std::string>& out) {
  if (running == next) return;
  out.push_back(std::string(key) + " changed to " + next_text + ": needs a restart, keeping " +
                running_text);
  next = running;
}

std::string ms_text(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

ReloadOutcome reload_failed(const std::vector<std::string>& errors) {
  for (const auto& e : errors) log::error(e);
  log::error(
      "reload failed, keeping the running configuration\nhint: fix the errors above "
      "(statherd-agent --check-config --config FILE) and send SIGHUP again");
  return {false, "reload failed: " + (errors.empty() ? std::string("?") : errors.front())};
}

// Server URL, token and ship_timeout: a new sender when one of them changed.
void apply_sender_settings(const AgentConfig& next, const ServerUrl& url, const std::string& token,
                           ReloadableSender& sender, std::vector<std::string>& changes) {
  HttpSenderOptions o = sender.options();
  const bool url_changed =
      o.url.host != url.host || o.url.port != url.port || o.url.path_prefix != url.path_prefix;
  if (url_changed) changes.push_back("server -> " + next.server);
  if (o.token != token) changes.push_back("token changed (" + next.token_file + ")");
  if (o.timeout != next.ship_timeout)
    changes.push_back("ship_timeout " + ms_text(o.timeout) + " -> " + ms_text(next.ship_timeout));
  if (!url_changed && o.token == token && o.timeout == next.ship_timeout) return;
  o.url = url;
  o.token = token;
  o.timeout = next.ship_timeout;
  sender.reconfigure(std::move(o));
}

}  // namespace

std::vector<std::string> keep_restart_only_settings(const AgentConfig& running, AgentConfig& next) {
  std::vector<std::string> kept;
  keep_if_changed("spool_dir", running.spool_dir, next.spool_dir, running.spool_dir, next.spool_dir,
                  kept);
  keep_if_changed("spool_max_bytes", running.spool_max_bytes, next.spool_max_bytes,
                  std::to_string(running.spool_max_bytes), std::to_string(next.spool_max_bytes),
                  kept);
  keep_if_changed("agent_id", running.agent_id, next.agent_id, running.agent_id, next.agent_id,
                  kept);
  // The etcd section: the maps' watcher and the servers' spools are made at start.
  auto etcd_text = [](const cluster::EtcdSettings& e) {
    return e.enabled ? "{endpoints " + e.endpoints_text + ", cluster " + e.cluster + "}"
                     : std::string("(none)");
  };
  const std::string running_etcd = etcd_text(running.etcd), next_etcd = etcd_text(next.etcd);
  if (running_etcd != next_etcd) {
    kept.push_back("etcd changed to " + next_etcd + ": needs a restart, keeping " + running_etcd);
    next.etcd = running.etcd;
  }
  return kept;
}

ReloadOutcome reload_agent(const ReloadTargets& t, int64_t last_scan_ms) {
  log::info("SIGHUP: reloading the configuration" +
            (t.cli.config_file.empty() ? std::string(" (no --config file: flags only)")
                                       : " from " + t.cli.config_file));
  LoadedConfig loaded = load_agent_config(t.cli);
  if (!loaded.errors.empty()) return reload_failed(loaded.errors);
  AgentConfig next = std::move(loaded.config);
  auto url = parse_server_url(next.server);
  auto token = read_token_file(next.token_file);
  if (!url || !token) return reload_failed({(!url ? url.error() : token.error()).to_string()});

  const std::vector<std::string> kept = keep_restart_only_settings(t.running, next);
  for (const auto& k : kept) log::warn(k);
  std::vector<std::string> changes = t.sources.update(next, last_scan_ms);
  apply_sender_settings(next, *url, *token, t.sender, changes);
  if (next.interval != t.running.interval) {
    changes.push_back("interval " + ms_text(t.running.interval) + " -> " + ms_text(next.interval));
    t.loop.set_interval(next.interval);
  }
  if (next.host != t.running.host) {
    changes.push_back("host " + t.running.host + " -> " + next.host);
    t.loop.set_host(next.host);
  }
  t.running = std::move(next);
  std::string message = "reloaded: " + std::to_string(t.sources.sources().size()) + " sources; " +
                        (changes.empty() ? std::string("nothing changed") : join(changes, "; "));
  if (!kept.empty()) message += "; " + std::to_string(kept.size()) + " setting(s) need a restart";
  return {true, message};  // the loop logs it once the new sources have scanned
}

}  // namespace statherd::agent
