#include "server/server_reload.h"

namespace statherd::server {

namespace {

std::string ms_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

void differs(std::vector<std::string>& out, const std::string& key, const std::string& before,
             const std::string& after) {
  if (before != after)
    out.push_back(key + ": " + before + " -> " + after + " needs a restart; keeping " + before);
}

std::string levels_text(const ServerConfig& c) {
  return std::string("process=") + (c.level_process ? "true" : "false") +
         ",host=" + (c.level_host ? "true" : "false") + ",app=" + (c.level_app ? "true" : "false");
}

std::string etcd_text(const ServerConfig& c) {
  if (!c.etcd.enabled) return "(none)";
  return "endpoints=" + c.etcd.endpoints_text + ",cluster=" + c.etcd.cluster + ",id=" +
         c.etcd.id + ",advertise=" + (c.etcd.advertise.empty() ? "(default)" : c.etcd.advertise) +
         ",lease_ttl=" + std::to_string(c.etcd.lease_ttl.count()) + "s";
}

}  // namespace

std::vector<std::string> restart_only_changes(const ServerConfig& a, const ServerConfig& b,
                                              const StoreNaming* store) {
  std::vector<std::string> out;
  differs(out, "listen", a.listen, b.listen);
  differs(out, "state_dir", a.state_dir, b.state_dir);
  differs(out, "interval", ms_text(a.interval), ms_text(b.interval));
  differs(out, "late_window", ms_text(a.late_window), ms_text(b.late_window));
  differs(out, "snapshot_every", ms_text(a.snapshot_every), ms_text(b.snapshot_every));
  differs(out, "idle_timeout", ms_text(a.idle_timeout), ms_text(b.idle_timeout));
  differs(out, "levels", levels_text(a), levels_text(b));
  differs(out, "threads", a.threads ? std::to_string(a.threads) : "auto",
          b.threads ? std::to_string(b.threads) : "auto");
  differs(out, "limits.max_body_bytes", std::to_string(a.max_body_bytes),
          std::to_string(b.max_body_bytes));
  differs(out, "limits.max_series_total", std::to_string(a.max_series_total),
          std::to_string(b.max_series_total));
  differs(out, "limits.max_series_per_source", std::to_string(a.max_series_per_source),
          std::to_string(b.max_series_per_source));
  differs(out, "memory.retention", a.memory_retention, b.memory_retention);
  differs(out, "memory.max_paths", std::to_string(a.memory_max_paths),
          std::to_string(b.memory_max_paths));
  differs(out, "etcd", etcd_text(a), etcd_text(b));
  // The memory store (/render) names paths with the prefix and tags it started with; the
  // Graphite sink takes the new ones at once.
  const std::string& kept = store ? store->prefix : a.graphite_prefix;
  if (kept != b.graphite_prefix)
    out.push_back("graphite.prefix: the Graphite sink uses '" + b.graphite_prefix +
                  "' now; /render and /metrics/find keep '" + kept + "' until a restart");
  const bool kept_tags = store ? store->tags : a.graphite_tags;
  if (kept_tags != b.graphite_tags) {
    const char* sink = b.graphite_tags ? "true" : "false";
    const char* kept_text = kept_tags ? "true" : "false";
    out.push_back(std::string("graphite.tags: the Graphite sink uses ") + sink +
                  " now; /render, /metrics/find and /tags keep " + kept_text + " until a restart");
  }
  return out;
}

ServerConfig merge_reloadable(const ServerConfig& running, const ServerConfig& next) {
  ServerConfig c = running;
  c.token_file = next.token_file;
  c.graphite_address = next.graphite_address;
  c.graphite_prefix = next.graphite_prefix;
  c.graphite_queue_max_lines = next.graphite_queue_max_lines;
  c.graphite_max_new_series_per_minute = next.graphite_max_new_series_per_minute;
  c.graphite_tags = next.graphite_tags;
  c.graphite_rules = next.graphite_rules;
  c.remote_write_url = next.remote_write_url;
  c.remote_write_queue_max_samples = next.remote_write_queue_max_samples;
  c.remote_write_batch_max_samples = next.remote_write_batch_max_samples;
  c.remote_write_timeout = next.remote_write_timeout;
  return c;
}

ReloadPlan plan_reload(const std::vector<std::string>& args, const ServerConfig& running,
                       const StoreNaming* store) {
  ReloadPlan plan;
  auto command = parse_server_command_line(args);
  if (!command) {
    plan.error = command.error().to_string();
    return plan;
  }
  auto token = read_token_file(command->config.token_file);
  if (!token) {
    plan.error = token.error().to_string();
    return plan;
  }
  plan.ok = true;
  plan.kept = restart_only_changes(running, command->config, store);
  plan.config = merge_reloadable(running, command->config);
  plan.token = std::move(*token);
  return plan;
}

}  // namespace statherd::server
