#include "agent/status_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace statherd::agent {
namespace {

using nlohmann::json;
constexpr int kStatusVersion = 1;

json sources_json(const std::vector<SourceStatus>& sources) {
  json out = json::array();
  for (const auto& s : sources)
    out.push_back({{"kind", s.kind},
                   {"describe", s.describe},
                   {"read", s.read},
                   {"errors", s.errors},
                   {"first_error", s.first_error}});
  return out;
}

template <typename T>
void get(const json& j, const char* key, T& out) {
  if (auto it = j.find(key); it != j.end() && !it->is_null()) out = it->get<T>();
}

std::string age(int64_t now_ms, int64_t then_ms) {
  if (then_ms <= 0) return "never";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f s ago", static_cast<double>(now_ms - then_ms) / 1000.0);
  return buf;
}

}  // namespace

std::string status_to_json(const AgentStatus& s) {
  json j = {{"version", kStatusVersion},
            {"state", s.state},
            {"pid", s.pid},
            {"started_ms", s.started_ms},
            {"config_file", s.config_file},
            {"host", s.host},
            {"agent_id", s.agent_id},
            {"server", s.server},
            {"interval_ms", s.interval_ms},
            {"last_tick_ms", s.last_tick_ms},
            {"written_ms", s.written_ms},
            {"sources", sources_json(s.sources)},
            {"spool",
             {{"batches", s.spool_batches},
              {"bytes", s.spool_bytes},
              {"dropped_batches", s.spool_dropped_batches}}},
            {"quarantine",
             {{"dir", s.quarantine_dir},
              {"batches", s.quarantine_batches},
              {"bytes", s.quarantine_bytes},
              {"quarantined_total", s.quarantined_total},
              {"dropped_batches", s.quarantine_dropped}}},
            {"ship",
             {{"last_result", s.ship_last_result},
              {"last_detail", s.ship_last_detail},
              {"last_ms", s.ship_last_ms},
              {"acked_batches", s.acked_batches},
              {"failed_attempts", s.failed_attempts},
              {"replayed_batches", s.replayed_batches},
              {"split_batches", s.split_batches},
              {"unauthorized", s.unauthorized}}},
            {"reloads",
             {{"ok", s.reloads_ok},
              {"failed", s.reloads_failed},
              {"last_result", s.reload_last_result},
              {"last_message", s.reload_last_message},
              {"last_ms", s.reload_last_ms}}}};
  j["servers"] = json::array();
  for (const auto& v : s.servers)
    j["servers"].push_back({{"id", v.id},
                            {"url", v.url},
                            {"batches", v.batches},
                            {"bytes", v.bytes},
                            {"dropped_batches", v.dropped_batches},
                            {"acked_batches", v.acked_batches},
                            {"failed_attempts", v.failed_attempts}});
  // Invalid UTF-8 (a file name, an error text) becomes U+FFFD instead of throwing.
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<AgentStatus> status_from_json(const std::string& text) {
  AgentStatus s;
  try {
    const json j = json::parse(text);
    if (!j.is_object() || j.value("version", 0) != kStatusVersion)
      return make_error("not a version " + std::to_string(kStatusVersion) + " status file",
                        "was it written by another statherd-agent version?");
    get(j, "state", s.state);
    get(j, "pid", s.pid);
    get(j, "started_ms", s.started_ms);
    get(j, "config_file", s.config_file);
    get(j, "host", s.host);
    get(j, "agent_id", s.agent_id);
    get(j, "server", s.server);
    get(j, "interval_ms", s.interval_ms);
    get(j, "last_tick_ms", s.last_tick_ms);
    get(j, "written_ms", s.written_ms);
    for (const auto& src : j.value("sources", json::array()))
      s.sources.push_back({src.value("kind", ""), src.value("describe", ""),
                           src.value("read", uint64_t{0}), src.value("errors", uint64_t{0}),
                           src.value("first_error", "")});
    const json spool = j.value("spool", json::object());
    get(spool, "batches", s.spool_batches);
    get(spool, "bytes", s.spool_bytes);
    get(spool, "dropped_batches", s.spool_dropped_batches);
    const json quarantine = j.value("quarantine", json::object());
    get(quarantine, "dir", s.quarantine_dir);
    get(quarantine, "batches", s.quarantine_batches);
    get(quarantine, "bytes", s.quarantine_bytes);
    get(quarantine, "quarantined_total", s.quarantined_total);
    get(quarantine, "dropped_batches", s.quarantine_dropped);
    const json ship = j.value("ship", json::object());
    get(ship, "last_result", s.ship_last_result);
    get(ship, "last_detail", s.ship_last_detail);
    get(ship, "last_ms", s.ship_last_ms);
    get(ship, "acked_batches", s.acked_batches);
    get(ship, "failed_attempts", s.failed_attempts);
    get(ship, "replayed_batches", s.replayed_batches);
    get(ship, "split_batches", s.split_batches);
    get(ship, "unauthorized", s.unauthorized);
    for (const auto& v : j.value("servers", json::array())) {
      if (!v.is_object()) continue;
      ServerSpoolStatus x;
      get(v, "id", x.id);
      get(v, "url", x.url);
      get(v, "batches", x.batches);
      get(v, "bytes", x.bytes);
      get(v, "dropped_batches", x.dropped_batches);
      get(v, "acked_batches", x.acked_batches);
      get(v, "failed_attempts", x.failed_attempts);
      s.servers.push_back(std::move(x));
    }
    const json reloads = j.value("reloads", json::object());
    get(reloads, "ok", s.reloads_ok);
    get(reloads, "failed", s.reloads_failed);
    get(reloads, "last_result", s.reload_last_result);
    get(reloads, "last_message", s.reload_last_message);
    get(reloads, "last_ms", s.reload_last_ms);
  } catch (const json::exception& e) {
    return make_error(std::string("unreadable status file: ") + e.what(),
                      "the agent rewrites it every interval; try again");
  }
  return s;
}

Status write_status_file(const std::string& dir, const AgentStatus& s) {
  const std::string tmp = dir + "/.tmp-" + kStatusFileName;  // the spool removes leftovers
  const std::string path = dir + "/" + kStatusFileName;
  const std::string text = status_to_json(s);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return make_error("cannot create " + tmp + ": " + std::strerror(errno),
                      "check that the spool directory is writable by the agent");
  bool ok = true;
  for (size_t done = 0; ok && done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return make_error("cannot write " + path + ": " + why, "is the disk full?");
  }
  return Ok{};
}

Result<AgentStatus> read_status_file(const std::string& dir) {
  const std::string path = dir + "/" + kStatusFileName;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return make_error("cannot read " + path + ": " + std::strerror(errno),
                      "is the agent running with this spool dir (--spool-dir / spool_dir), and "
                      "may this user read it?");
  std::ostringstream ss;
  ss << in.rdbuf();
  auto status = status_from_json(ss.str());
  if (!status) return make_error(path + ": " + status.error().message, status.error().hint);
  return status;
}

bool process_exists(int64_t pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

bool status_looks_alive(const AgentStatus& s, int64_t now_ms, bool pid_exists, std::string* why) {
  auto fail = [&](std::string reason) {
    if (why) *why = std::move(reason);
    return false;
  };
  if (s.state != "running") return fail("the agent stopped (state " + s.state + ")");
  if (!pid_exists) return fail("no process with pid " + std::to_string(s.pid));
  const int64_t last = s.last_tick_ms > 0 ? s.last_tick_ms : s.started_ms;
  const int64_t limit = 3 * s.interval_ms;
  if (now_ms - last > limit)
    return fail("no tick for " + std::to_string((now_ms - last) / 1000) +
                " s (more than 3 intervals)");
  if (why) why->clear();
  return true;
}

std::string format_status(const AgentStatus& s, int64_t now_ms, bool alive,
                          const std::string& why) {
  std::ostringstream o;
  o << "statherd-agent " << (alive ? "alive" : "NOT RUNNING") << (why.empty() ? "" : ": " + why)
    << "\n  pid " << s.pid << ", started " << age(now_ms, s.started_ms) << ", agent_id "
    << s.agent_id << ", host " << s.host << "\n  config "
    << (s.config_file.empty() ? "(none)" : s.config_file) << ", server " << s.server
    << ", interval " << s.interval_ms << " ms"
    << "\n  last tick " << age(now_ms, s.last_tick_ms) << "\n  sources:\n";
  for (const auto& src : s.sources) {
    o << "    " << src.describe << ": " << src.read << " read, " << src.errors << " errors";
    if (!src.first_error.empty()) o << " (first: " << src.first_error << ")";
    o << "\n";
  }
  o << "  spool: " << s.spool_batches << " batches, " << s.spool_bytes << " bytes, "
    << s.spool_dropped_batches << " dropped\n  quarantine: " << s.quarantine_batches
    << " batches, " << s.quarantine_bytes << " bytes in "
    << (s.quarantine_dir.empty() ? "(none)" : s.quarantine_dir) << "; " << s.quarantined_total
    << " quarantined, " << s.quarantine_dropped << " removed beyond its bound"
    << (s.quarantine_batches > 0 ? " -- INSPECT: the server refused these batches" : "")
    << "\n  last ship: " << s.ship_last_result
    << (s.ship_last_detail.empty() ? "" : " (" + s.ship_last_detail + ")") << ", "
    << age(now_ms, s.ship_last_ms) << "; " << s.acked_batches << " acked, " << s.failed_attempts
    << " failed attempts (" << s.unauthorized << " unauthorized), " << s.replayed_batches
    << " replayed, " << s.split_batches << " split after 413\n  reloads: " << s.reloads_ok
    << " ok, " << s.reloads_failed << " failed; last " << s.reload_last_result
    << (s.reload_last_message.empty() ? "" : ": " + s.reload_last_message) << "\n";
  if (!s.servers.empty()) o << "  servers (a spool each):\n";
  for (const auto& v : s.servers)
    o << "    " << v.id << " at " << (v.url.empty() ? "(no URL read yet)" : v.url) << ": "
      << v.batches << " batches, " << v.bytes << " bytes waiting, " << v.dropped_batches
      << " dropped; " << v.acked_batches << " acked, " << v.failed_attempts
      << " failed attempts\n";
  return o.str();
}

}  // namespace statherd::agent
