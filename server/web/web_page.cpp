#include "server/web/web_page.h"

#include <ctime>
#include <deque>
#include <map>
#include <set>

namespace statherd::server::web {

namespace {

std::string text_of(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  return it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int64_t int_of(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_number() ? it->get<int64_t>() : 0;
}

std::string utc_time(int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string age(int64_t now_ms, int64_t then_ms) {
  if (then_ms <= 0) return "-";
  int64_t s = (now_ms - then_ms) / 1000;
  if (s < 0) s = 0;
  if (s < 120) return std::to_string(s) + " s ago";
  if (s < 7200) return std::to_string(s / 60) + " min ago";
  return std::to_string(s / 3600) + " h ago";
}

std::string cell(std::string_view text) { return "<td>" + html_escape(text) + "</td>"; }

std::string joined(const std::set<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

struct Group {
  std::set<std::string> members;  // hosts of an app, apps of a host
  size_t processes = 0;
};

std::string group_list(const char* id, const char* heading, const char* member_label,
                       const std::map<std::string, Group>& groups) {
  std::string out = std::string("<section id=\"") + id + "\"><h2>" + heading + " (" +
                    std::to_string(groups.size()) + ")</h2>";
  if (groups.empty()) return out + "<p class=\"none\">none reporting</p></section>\n";
  out += "<ul>";
  for (const auto& [name, g] : groups) {
    out += "<li><b>" + html_escape(name) + "</b> <span class=\"dim\">" +
           std::to_string(g.processes) + (g.processes == 1 ? " process" : " processes") + "; " +
           member_label + ": " + html_escape(joined(g.members)) + "</span></li>";
  }
  return out + "</ul></section>\n";
}

std::string apps_and_hosts(const nlohmann::json& sources) {
  std::map<std::string, Group> apps, hosts;
  for (const nlohmann::json& s : sources) {
    std::string app = text_of(s, "app"), host = text_of(s, "host");
    apps[app].members.insert(host);
    apps[app].processes++;
    hosts[host].members.insert(app);
    hosts[host].processes++;
  }
  return group_list("apps", "Apps", "hosts", apps) + group_list("hosts", "Hosts", "apps", hosts);
}

std::string process_rows(const nlohmann::json& sources, int64_t now_ms) {
  std::string out;
  for (const nlohmann::json& s : sources) {
    std::string errors;
    if (auto it = s.find("errors"); it != s.end() && it->is_array()) {
      for (const nlohmann::json& e : *it)
        errors += (errors.empty() ? "" : "; ") + (e.is_string() ? e.get<std::string>() : e.dump());
    }
    out += "<tr>" + cell(text_of(s, "app")) + cell(text_of(s, "host")) + cell(text_of(s, "pid")) +
           cell(utc_time(int_of(s, "start_time_ms"))) + cell(text_of(s, "path")) +
           cell(age(now_ms, int_of(s, "last_seen_ms"))) + cell(text_of(s, "series")) +
           cell(errors) + "</tr>\n";
  }
  return out;
}

std::string processes_table(const nlohmann::json& sources, int64_t now_ms) {
  std::string out = "<section id=\"processes\"><h2>Processes (" +
                    std::to_string(sources.size()) + ")</h2>";
  if (sources.empty()) return out + "<p class=\"none\">none reporting</p></section>\n";
  return out + "<table><thead><tr><th>app</th><th>host</th><th>pid</th><th>started</th>"
               "<th>path</th><th>last seen</th><th>series</th><th>errors</th></tr></thead>"
               "<tbody>\n" + process_rows(sources, now_ms) + "</tbody></table></section>\n";
}

std::string agents_list(const nlohmann::json& agents, int64_t now_ms) {
  std::string out = "<section id=\"agents\"><h2>Agents (" + std::to_string(agents.size()) +
                    ")</h2><ul>";
  for (const nlohmann::json& a : agents) {
    out += "<li><b>" + html_escape(text_of(a, "agent_id")) + "</b> <span class=\"dim\">seq " +
           html_escape(text_of(a, "last_seq")) + ", seen " +
           html_escape(age(now_ms, int_of(a, "last_seen_ms"))) + "</span>";
    if (auto it = a.find("errors"); it != a.end() && it->is_array()) {
      for (const nlohmann::json& e : *it)
        out += "<div class=\"err\">" + html_escape(text_of(e, "source")) + ": " +
               html_escape(text_of(e, "message")) + "</div>";
    }
    out += "</li>";
  }
  return out + "</ul></section>\n";
}

std::string metric_form(const PageInput& in) {
  std::string out =
      "<section id=\"metric\"><h2>Metric</h2><form method=\"get\" action=\"/\">"
      "<label for=\"metric-select\">metric path </label><select id=\"metric-select\" "
      "name=\"metric\"><option value=\"\">(choose)</option>";
  for (const std::string& m : in.metrics) {
    out += "<option value=\"" + html_escape(m) + "\"" + (m == in.chosen_metric ? " selected" : "") +
           ">" + html_escape(m) + "</option>";
  }
  out += "</select> <button type=\"submit\">show</button></form>\n";
  out += "<div id=\"charts\" data-metric=\"" + html_escape(in.chosen_metric) +
         "\" data-refresh-ms=\"" + std::to_string(in.refresh_ms) + "\">";
  if (in.chosen_metric.empty()) {
    out += "<p class=\"none\">choose a metric to chart its rate and percentiles</p>";
  } else {
    out += "<p class=\"none\" id=\"charts-status\">charts of <code>" +
           html_escape(in.chosen_metric) + ".*</code> need JavaScript; the same data is at "
           "<a href=\"/render?target=" + html_escape(in.chosen_metric) +
           ".*&amp;from=-10min\">/render</a></p>";
  }
  return out + "</div></section>\n";
}

constexpr std::string_view kStyle = R"css(
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 .5em}h2{font-size:16px;margin:1.2em 0 .4em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;
font-size:13px}th{background:#eee}.dim{color:#666}.none{color:#888}.err{color:#b00}
#charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;padding:6px;background:#fff;
border:1px solid #ddd;width:260px}figcaption{font-size:12px;font-family:monospace;
overflow-wrap:anywhere}
svg .line{fill:none;stroke:#1565c0;stroke-width:1.5}svg .pt{fill:#1565c0}
svg .axis{stroke:#bbb}svg text{font-size:10px;fill:#555}
)css";

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char ch : text) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += ch;
    }
  }
  return out;
}

std::vector<std::string> metric_choices(const MemoryStore& store, size_t limit, size_t max_nodes) {
  std::set<std::string> found;
  std::deque<std::string> patterns{"*"};
  size_t visited = 0;
  while (!patterns.empty() && visited < max_nodes && found.size() < limit) {
    nlohmann::json nodes = store.find(patterns.front());
    patterns.pop_front();
    for (const nlohmann::json& node : nodes) {
      if (++visited > max_nodes) break;
      std::string id = text_of(node, "id");
      if (int_of(node, "leaf") == 1) {
        size_t dot = id.rfind('.');
        if (dot != std::string::npos && found.size() < limit) found.insert(id.substr(0, dot));
      } else {
        patterns.push_back(id + ".*");
      }
    }
  }
  return {found.begin(), found.end()};
}

std::string render_index(const PageInput& in) {
  static const nlohmann::json kEmpty = nlohmann::json::array();
  const nlohmann::json& sources =
      in.sources.contains("sources") && in.sources["sources"].is_array() ? in.sources["sources"]
                                                                          : kEmpty;
  const nlohmann::json& agents =
      in.sources.contains("agents") && in.sources["agents"].is_array() ? in.sources["agents"]
                                                                        : kEmpty;
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width\"><title>statherd</title><style>";
  out += kStyle;
  out += "</style><script src=\"/static/app.js\" defer></script></head><body>\n";
  out += "<h1>statherd</h1><p class=\"dim\">as of " + utc_time(in.now_ms) +
         " &middot; read-only &middot; <a href=\"/api/v1/sources\">/api/v1/sources</a></p>\n";
  out += metric_form(in);
  out += apps_and_hosts(sources);
  out += processes_table(sources, in.now_ms);
  out += agents_list(agents, in.now_ms);
  return out + "</body></html>\n";
}

}  // namespace statherd::server::web
