#include "server/api_routes.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <map>
#include <set>

#include "server/graphite_tags.h"
#include "server/render/functions.h"
#include "server/render/output.h"
#include "server/render/target.h"
#include "server/web/web_page.h"

namespace statherd::server {

namespace {

int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

struct Route {
  std::string_view path;
  std::string_view method;
  bool needs_token;
  bool form_post = false;  // also POST with a form body (Grafana's Graphite data source)
};

constexpr std::array<Route, 22> kRoutes{{
    {"/api/v1/ingest", "POST", true},
    {"/render", "GET", false, true},
    {"/metrics/find", "GET", false, true},
    {"/metrics/expand", "GET", false, true},
    {"/metrics/index.json", "GET", false, true},
    {"/functions", "GET", false},
    {"/version", "GET", false},
    {"/tags", "GET", false},  // and /tags/<tag>
    {"/tags/findSeries", "GET", false, true},
    {"/tags/autoComplete/tags", "GET", false, true},
    {"/tags/autoComplete/values", "GET", false, true},
    {"/tags/tagSeries", "POST", false},  // graphite-web's tag writes: refused (400)
    {"/tags/tagMultiSeries", "POST", false},
    {"/tags/delSeries", "POST", false},
    {"/events/get_data", "GET", false, true},
    {"/api/v1/sources", "GET", false},
    {"/api/v1/cluster", "GET", false},
    {"/healthz", "GET", false},
    {"/readyz", "GET", false},
    {"/metrics", "GET", false},
    {"/", "GET", false},
    {"/static/app.js", "GET", false},
}};

const Route* find_route(std::string_view path) {
  if (path.starts_with("/functions/")) path = "/functions";  // /functions/NAME
  for (const Route& r : kRoutes) {
    if (r.path == path) return &r;
  }
  if (path.starts_with("/tags/")) return find_route("/tags");  // /tags/<tag>
  return nullptr;
}

std::string_view query_of(std::string_view target) {
  size_t q = target.find('?');
  return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
}

// Read-only web responses: strict CSP (no inline script), never cached by shared caches.
ApiResponse web_response(std::string body, std::string content_type, std::string cache_control) {
  ApiResponse r;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  r.headers = {{"Content-Security-Policy", std::string(web::kContentSecurityPolicy)},
               {"Cache-Control", std::move(cache_control)},
               {"X-Content-Type-Options", "nosniff"},
               {"Referrer-Policy", "no-referrer"}};
  return r;
}

ApiResponse web_index(std::string_view query, nlohmann::json sources, const Engine& engine,
                      const MemoryStore& store, int64_t now_ms) {
  web::PageInput in;
  for (auto& [key, value] : parse_query(query)) {
    if (key == "metric") in.chosen_metric = value;
  }
  in.sources = std::move(sources);
  in.metrics = web::metric_choices(store);
  in.now_ms = now_ms;
  in.refresh_ms = engine.options().interval.count();
  return web_response(web::render_index(in), "text/html; charset=utf-8", "no-store");
}

ApiResponse json_ok(const nlohmann::json& body) {
  ApiResponse r;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

}  // namespace

std::string percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char ch = text[i];
    if (ch == '+' && plus_is_space) {
      out += ' ';
    } else if (ch == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += ch;
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string_view key = part.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1);
    out.emplace_back(percent_decode(key), percent_decode(value));
  }
  return out;
}

ApiResponse json_error(int status, std::string_view message, std::string_view hint) {
  nlohmann::json body = {{"status", "error"}, {"error", std::string(message)}};
  if (!hint.empty()) body["hint"] = std::string(hint);
  ApiResponse r = json_ok(body);
  r.status = status;
  return r;
}

ApiRoutes::ApiRoutes(const IngestToken& token, Engine& engine, MemoryStore& store,
                     std::function<int64_t()> now_ms, ApiRoutesOptions options)
    : token_(token), engine_(engine), store_(store), now_ms_(std::move(now_ms)),
      prometheus_scrape_(std::move(options.prometheus_scrape)),
      readiness_(std::move(options.readiness)), cluster_(std::move(options.cluster)),
      read_limits_(options.reads) {}

PrepareScrape scrape_from_text(std::function<std::string()> scrape_text) {
  return [scrape_text = std::move(scrape_text)] {
    return std::function<ScrapeText()>(
        [scrape_text] { return ScrapeText{nullptr, scrape_text()}; });
  };
}

std::string_view ApiRoutes::path_of(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  // graphite-web's routes take a trailing slash (/render/, /metrics/find/): so do these
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return path;
}

bool ApiRoutes::needs_token(std::string_view path) {
  const Route* r = find_route(path);
  return r != nullptr && r->needs_token;
}

bool ApiRoutes::authorized(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (!authorization.starts_with(kBearer)) return false;
  return token_.matches(authorization.substr(kBearer.size()));  // a reload may change it
}

ApiResponse ApiRoutes::check_head(std::string_view method, std::string_view target,
                                  std::string_view authorization) const {
  const Route* route = find_route(path_of(target));
  if (route == nullptr) return json_error(404, "no such path: " + std::string(path_of(target)));
  if (method != route->method && !(route->form_post && method == "POST")) {
    ApiResponse r = json_error(405, "method " + std::string(method) + " not allowed on " +
                                        std::string(route->path));
    r.allow = std::string(route->method);
    return r;
  }
  if (route->needs_token && !authorized(authorization)) {
    return json_error(401, "missing or wrong bearer token",
                      "send 'Authorization: Bearer <token>' with the server's token file");
  }
  ApiResponse go_on;
  go_on.status = 0;
  return go_on;
}

ApiResponse ApiRoutes::handle(const ApiRequest& request) {
  if (ApiResponse head = check_head(request.method, request.target, request.authorization);
      head.status != 0) {
    return head;
  }
  std::string_view path = path_of(request.target);
  std::string_view query = query_of(request.target);
  std::string form;  // POST /render, /metrics/find: the form body's parameters, then the URL's
  if (request.method == "POST" && path != "/api/v1/ingest") {
    form = std::string(request.body) + "&" + std::string(query);
    query = form;
  }
  if (path == "/api/v1/ingest") return ingest(request.body);
  if (path == "/render") return render(query);
  if (path == "/metrics/find") return find(query);
  if (path == "/metrics/expand") return expand(query);
  if (path == "/metrics/index.json") return metrics_index(query);
  if (path == "/functions" || path.starts_with("/functions/")) return functions(path, query);
  if (path == "/tags" || path.starts_with("/tags/")) return tags(path, query);
  if (path == "/events/get_data") return events(query);
  if (path == "/version") {  // the graphite-web whose API this answers as (Grafana asks)
    return web_response("1.1.8", "text/plain; charset=utf-8", "no-cache");
  }
  if (path == "/api/v1/sources") return json_ok(engine_.sources_json(now_ms_()));
  if (path == "/metrics") return prometheus_metrics();
  if (path == "/readyz") return readyz();
  if (path == "/api/v1/cluster") {
    if (!cluster_)
      return json_error(404, "this server is not in a cluster (no etcd section)",
                        "docs/CLUSTER.md; the etcd section of config/server.yaml");
    return json_ok(cluster_());
  }
  if (path == "/") {
    return web_index(query, engine_.sources_json(now_ms_()), engine_, store_, now_ms_());
  }
  if (path == "/static/app.js") {
    return web_response(std::string(web::app_js()), "text/javascript; charset=utf-8", "no-cache");
  }
  return healthz();
}

bool ApiRoutes::is_read_path(std::string_view path) {
  return path == "/render" || path == "/metrics/find" || path == "/" || path == "/metrics" ||
         path == "/api/v1/sources" || path == "/metrics/expand" || path == "/metrics/index.json" ||
         path == "/functions" || path.starts_with("/functions/") || path == "/tags" ||
         path.starts_with("/tags/") || path == "/events/get_data";
}

std::function<ApiResponse()> ApiRoutes::prepare_read(const ApiRequest& request) {
  std::string_view path = path_of(request.target);
  if (!is_read_path(path)) return {};
  if (path == "/metrics") return prepare_metrics();
  if (path == "/api/v1/sources") {
    // The Engine's lock may be held by a rollup: taken on the read thread, never the io one.
    return [this] { return json_ok(engine_.sources_json(now_ms_())); };
  }
  if (path == "/") {
    return [this, query = std::string(query_of(request.target))] {
      const int64_t now = now_ms_();
      return web_index(query, engine_.sources_json(now), engine_, store_, now);
    };
  }
  return [this, method = std::string(request.method), target = std::string(request.target),
          body = std::string(request.body)] {
    return handle(ApiRequest{method, target, {}, body});
  };
}

ApiResponse ApiRoutes::bounded_json(const nlohmann::json& body) const {
  return bounded(json_ok(body));
}

ApiResponse ApiRoutes::bounded(ApiResponse r) const {
  if (r.body.size() > read_limits_.max_answer_bytes) {
    return json_error(413, "the answer of " + std::to_string(r.body.size()) +
                               " bytes is over the limit of " +
                               std::to_string(read_limits_.max_answer_bytes) + " bytes",
                      "narrow the pattern, shorten from/until or set maxDataPoints; or raise "
                      "reads.max_answer_bytes");
  }
  return r;
}

// 200 when the readiness function says "ready": true (or none was given), else 503; the body is
// the function's JSON either way, so an operator sees which check failed.
ApiResponse ApiRoutes::readyz() {
  nlohmann::json body = readiness_ ? readiness_() : nlohmann::json{{"ready", true}};
  ApiResponse r = json_ok(body);
  r.status = body.value("ready", false) ? 200 : 503;
  return r;
}

// Empty when the endpoint is off: handle() answers 404 on the io thread.
std::function<ApiResponse()> ApiRoutes::prepare_metrics() {
  if (!prometheus_scrape_) return {};
  return [work = prometheus_scrape_()] {
    ScrapeText text = work();
    ApiResponse r;
    r.shared_body = std::move(text.shared);
    r.body = std::move(text.own);
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  };
}

ApiResponse ApiRoutes::prometheus_metrics() {
  if (auto work = prepare_metrics()) return work();
  return json_error(404, "the Prometheus endpoint is not enabled on this server");
}

ApiResponse ApiRoutes::ingest(std::string_view body) {
  return ingest_response(engine_.ingest(body, now_ms_()));
}

ApiResponse ApiRoutes::ingest_response(const IngestOutcome& outcome) {
  if (outcome.http_status == 400) {
    // The decoder's verdict: the only answer that lets an agent take a batch out of its spool
    // (into its quarantine). docs/API.md, "Ingest answers".
    ApiResponse r = json_ok({{"status", "error"},
                             {"error", outcome.message},
                             {"hint", "the agent and server versions may differ"},
                             {"verdict", "malformed_batch"}});
    r.status = 400;
    return r;
  }
  if (outcome.http_status == 503) {  // busy, or a resend racing its first copy: soon again
    ApiResponse r = json_error(503, outcome.message, "the agent keeps the batch and retries");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  if (outcome.http_status != 200) {
    return json_error(outcome.http_status, outcome.message, "see the server log");
  }
  return json_ok({{"status", "ok"}, {"duplicate", outcome.duplicate}, {"samples", outcome.samples}});
}

ApiResponse ApiRoutes::render(std::string_view query) {
  // graphite-web 1.1.8's parameters (render/views.py parseOptions): repeated target (or
  // target[]), from (default -1d), until and now (default the clock), format json|csv|raw,
  // maxDataPoints, noNullPoints, jsonp, xFilesFactor; the rest (pretty, cacheTimeout,
  // noCache, local, graph options) changes nothing here.
  std::vector<std::string> targets, bracket_targets;
  std::string from = "-1d", until = "now", now_text, format = "json", jsonp, tz;
  render::OutputOptions output;
  double xfiles_factor = 0;
  for (auto& [key, value] : parse_query(query)) {
    if (key == "target") targets.push_back(value);
    else if (key == "target[]") bracket_targets.push_back(value);
    else if (key == "from") from = value;
    else if (key == "until") until = value;
    else if (key == "now") now_text = value;
    else if (key == "tz") tz = value;
    else if (key == "format") format = value;
    else if (key == "jsonp") jsonp = value;
    else if (key == "noNullPoints") output.no_null_points = true;
    else if (key == "xFilesFactor") {
      char* end = nullptr;
      xfiles_factor = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !(xfiles_factor >= 0 && xfiles_factor <= 1)) {
        return json_error(400, "xFilesFactor '" + value + "' is not a number from 0 to 1",
                          "e.g. xFilesFactor=0.5");
      }
    } else if (key == "maxDataPoints") {
      size_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size()) {
        return json_error(400, "maxDataPoints '" + value + "' is not a count",
                          "use a positive integer, e.g. maxDataPoints=500");
      }
      if (n > 0) output.max_data_points = n;
    }
  }
  if (targets.empty()) targets = std::move(bracket_targets);
  if (format != "json" && format != "csv" && format != "raw") {
    return json_error(400, "format '" + format + "' is not supported",
                      "use format=json (the default), csv or raw");
  }
  if (!jsonp.empty() && format == "json") {
    bool ok = jsonp.size() <= 128 && std::all_of(jsonp.begin(), jsonp.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '$';
    });
    if (!ok) {
      return json_error(400, "jsonp '" + jsonp.substr(0, 64) + "' is not a function name",
                        "letters, digits, '_', '.' and '$' only");
    }
    output.jsonp = jsonp;
  }
  if (targets.size() > read_limits_.max_targets) {
    return json_error(400, std::to_string(targets.size()) + " targets, over the limit of " +
                               std::to_string(read_limits_.max_targets) + " per request",
                      "split the request, or raise reads.max_targets");
  }
  // tz: a zone of the system's tzdata; graphite-web keeps its default (UTC) for an unknown one
  TimeZone zone;
  if (!tz.empty()) {
    if (auto named = TimeZone::named(tz)) zone = *named;
  }
  int64_t now_s = now_ms_() / 1000;
  if (!now_text.empty()) {
    auto now = parse_graphite_time(now_text, now_s, zone);
    if (!now) return json_error(400, "now: " + now.error().message, now.error().hint);
    now_s = *now;
  }
  auto from_s = parse_graphite_time(from, now_s, zone);
  auto until_s = parse_graphite_time(until, now_s, zone);
  if (!from_s) return json_error(400, "from: " + from_s.error().message, from_s.error().hint);
  if (!until_s) return json_error(400, "until: " + until_s.error().message, until_s.error().hint);
  if (*from_s == *until_s) {
    return json_error(400, "invalid empty time range: from and until are both " +
                               std::to_string(*from_s),
                      "until must differ from from");
  }
  render::RenderContext ctx;
  ctx.from_s = std::min(*from_s, *until_s);  // graphite-web swaps them
  ctx.until_s = std::max(*from_s, *until_s);
  ctx.now_s = now_s;
  ctx.xfiles_factor = xfiles_factor;
  ctx.max_series = read_limits_.max_paths;
  MemoryStore::FetchBudget budget(read_limits_);
  uint64_t answer_points = read_limits_.max_points;  // left for plain path targets
  size_t alternatives_left = read_limits_.max_alternatives;
  bool over_limit = false;  // a 413, not a 400
  ctx.fetch = [&](const std::string& expression, int64_t f,
                  int64_t u) -> Result<std::vector<render::Series>> {
    auto pattern = GraphitePattern::compile(expression, read_limits_, alternatives_left);
    if (!pattern) return Error{"target: " + pattern.error().message, pattern.error().hint};
    // graphite-web passes the request's now (the clock unless `now=` is given) to Whisper,
    // which clamps `until` to it and `from` to it minus the longest retention.
    auto fetched = store_.fetch(*pattern, expression, f, u, now_s, budget);
    over_limit = !fetched;
    return fetched;
  };
  ctx.fetch_tagged = [&](const std::string& call, const std::vector<std::string>& expressions,
                         int64_t f, int64_t u) -> Result<std::vector<render::Series>> {
    if (expressions.empty()) {
      return Error{"seriesByTag: no tag expression given (they are strings)",
                   "e.g. seriesByTag('name=statherd.web.requests.rate', 'dc=east')"};
    }
    if (expressions.size() > read_limits_.max_targets) {
      return Error{"seriesByTag: " + std::to_string(expressions.size()) +
                       " tag expressions, over the limit of " +
                       std::to_string(read_limits_.max_targets),
                   "use fewer expressions; or raise reads.max_targets"};
    }
    auto query = TagQuery::compile(expressions);
    if (!query) return Error{"seriesByTag: " + query.error().message, query.error().hint};
    // the request's budget, shared by every seriesByTag() of every target
    auto fetched = store_.fetch_tagged(*query, call, f, u, now_s, budget);
    if (!fetched) {
      over_limit = true;
      return Error{"seriesByTag: " + fetched.error().message, fetched.error().hint};
    }
    return fetched;
  };
  std::vector<render::Series> series;
  for (const std::string& target : targets) {
    if (std::all_of(target.begin(), target.end(),
                    [](char c) { return std::isspace(static_cast<unsigned char>(c)); })) {
      continue;
    }
    auto parsed = render::parse_target(target);
    if (!parsed) return json_error(400, parsed.error().message, parsed.error().hint);
    if (parsed->kind == render::Expr::Kind::kPath) {
      budget.answer_points = answer_points;
      budget.points_cap = output.max_data_points.value_or(0);
    }
    auto result = render::evaluate(*parsed, ctx);
    if (budget.answer_points) answer_points = *budget.answer_points;
    budget.answer_points.reset();
    if (!result) {
      bool limit = over_limit || result.error().message.starts_with(render::kTooManySeries);
      return json_error(limit ? 413 : 400, result.error().message, result.error().hint);
    }
    for (auto& s : *result) series.push_back(std::move(s));
  }
  ApiResponse r;
  if (format == "csv") {
    r.body = render::csv_answer(series, zone);
    r.content_type = "text/csv";
  } else if (format == "raw") {
    r.body = render::raw_answer(series);
    r.content_type = "text/plain";
  } else {
    size_t points = 0;
    r.body = render::json_answer(series, output, points);
    if (points > read_limits_.max_points) {
      return json_error(413, "the answer would hold " + std::to_string(points) +
                                 " datapoints, more than " +
                                 std::to_string(read_limits_.max_points),
                        "narrow the pattern (fewer *), shorten from/until or set maxDataPoints; "
                        "or raise reads.max_points");
    }
    if (!output.jsonp.empty()) r.content_type = "text/javascript";
  }
  return bounded(std::move(r));
}

Result<std::vector<ApiRoutes::FoundNode>> ApiRoutes::found_nodes(const std::string& pattern) {
  size_t alternatives_left = read_limits_.max_alternatives;
  auto compiled = GraphitePattern::compile(pattern, read_limits_, alternatives_left);
  if (!compiled) return Error{"query: " + compiled.error().message, compiled.error().hint};
  auto found = store_.find(*compiled, read_limits_);
  if (!found) return found.error();
  std::vector<FoundNode> nodes;
  for (const auto& node : *found) {
    nodes.push_back({node["id"].get<std::string>(), node["text"].get<std::string>(),
                     node["leaf"] == 1});
  }
  std::stable_sort(nodes.begin(), nodes.end(),
                   [](const FoundNode& a, const FoundNode& b) { return a.path < b.path; });
  std::stable_sort(nodes.begin(), nodes.end(),
                   [](const FoundNode& a, const FoundNode& b) { return a.name < b.name; });
  return nodes;
}

namespace {

// graphite-web's json_response_for: the JSON, or NAME(JSON) as text/javascript.
ApiResponse json_or_jsonp(ApiResponse r, const std::string& jsonp) {
  if (jsonp.empty()) return r;
  r.body = jsonp + "(" + r.body + ")";
  r.content_type = "text/javascript";
  return r;
}

bool valid_jsonp(const std::string& name) {
  return name.size() <= 128 && std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '$';
         });
}

}  // namespace

ApiResponse ApiRoutes::find(std::string_view query) {
  // graphite-web 1.1.8's find_view: format treejson (default), completer, json, nodelist;
  // leavesOnly, wildcards, position, jsonp; from/until/local are accepted and change nothing.
  std::string pattern, format = "treejson", jsonp;
  bool leaves_only = false, wildcards = false;
  int position = -1;
  for (auto& [key, value] : parse_query(query)) {
    if (key == "query") pattern = value;
    else if (key == "format") format = value;
    else if (key == "jsonp") jsonp = value;
    else if (key == "leavesOnly") leaves_only = value == "1";
    else if (key == "wildcards") wildcards = value == "1";
    else if (key == "position") {
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), position);
      if (ec != std::errc() || end != value.data() + value.size()) {
        return json_error(400, "position '" + value + "' is not an integer", "e.g. position=2");
      }
    }
  }
  if (format != "treejson" && format != "completer" && format != "json" &&
      format != "nodelist") {
    return json_error(400, "format '" + format + "' is not supported",
                      "use format=treejson (the default), completer, json or nodelist");
  }
  if (!valid_jsonp(jsonp)) return json_error(400, "jsonp: not a function name");
  if (pattern.empty()) return json_error(400, "no query", "add query=PATTERN, e.g. statherd.*");
  const size_t dot = pattern.rfind('.');
  const std::string base_path = dot == std::string::npos ? "" : pattern.substr(0, dot + 1);
  if (format == "completer") {  // graphite-web completes what was typed so far
    for (size_t at; (at = pattern.find("..")) != std::string::npos;) pattern.replace(at, 2, "*.");
    if (pattern.back() != '*') pattern += '*';
  }
  auto found = found_nodes(pattern);
  if (!found) {
    bool limit = found.error().message.starts_with("the answer");
    return json_error(limit ? 413 : 400, found.error().message, found.error().hint);
  }
  std::vector<FoundNode> nodes;
  for (FoundNode& n : *found)
    if (n.leaf || !leaves_only) nodes.push_back(std::move(n));
  nlohmann::json out;
  if (format == "treejson") {
    // One node per name (the first), branches then leaves, ids under the query's own prefix.
    auto node_json = [](const std::string& text, const std::string& id, bool leaf) {
      return nlohmann::json{{"text", text}, {"id", id}, {"leaf", leaf ? 1 : 0},
                            {"expandable", leaf ? 0 : 1}, {"allowChildren", leaf ? 0 : 1}};
    };
    out = nlohmann::json::array();
    if (nodes.size() > 1 && wildcards) {
      bool any_branch = std::any_of(nodes.begin(), nodes.end(),
                                    [](const FoundNode& n) { return !n.leaf; });
      out.push_back(node_json("*", base_path + "*", !any_branch));
    }
    std::set<std::string> seen;
    nlohmann::json branches = nlohmann::json::array(), leaves = nlohmann::json::array();
    for (const FoundNode& n : nodes) {
      if (!seen.insert(n.name).second) continue;
      (n.leaf ? leaves : branches).push_back(node_json(n.name, base_path + n.name, n.leaf));
    }
    for (auto& b : branches) out.push_back(std::move(b));
    for (auto& l : leaves) out.push_back(std::move(l));
  } else if (format == "completer") {
    nlohmann::json metrics = nlohmann::json::array();
    for (const FoundNode& n : nodes) {
      metrics.push_back({{"path", n.path + (n.leaf ? "" : ".")},
                         {"name", n.name},
                         {"is_leaf", n.leaf ? "1" : "0"}});
    }
    if (metrics.size() > 1 && wildcards) metrics.push_back({{"name", "*"}});
    out = {{"metrics", metrics}};
  } else if (format == "json") {
    std::vector<FoundNode> by_path = nodes;
    std::stable_sort(by_path.begin(), by_path.end(),
                     [](const FoundNode& a, const FoundNode& b) { return a.path < b.path; });
    out = nlohmann::json::array();
    for (const FoundNode& n : by_path) out.push_back({{"path", n.path}, {"is_leaf", n.leaf}});
  } else {  // nodelist: the distinct components at `position` of the matching paths
    std::set<std::string> at;
    for (const FoundNode& n : nodes) {
      std::vector<std::string> parts;
      size_t start = 0;
      for (size_t d; (d = n.path.find('.', start)) != std::string::npos; start = d + 1)
        parts.push_back(n.path.substr(start, d - start));
      parts.push_back(n.path.substr(start));
      int64_t i = position < 0 ? static_cast<int64_t>(parts.size()) + position : position;
      if (i >= 0 && i < static_cast<int64_t>(parts.size())) at.insert(parts[static_cast<size_t>(i)]);
    }
    out = {{"nodes", at}};
  }
  ApiResponse r = bounded_json(out);
  if (r.status == 200) {
    r.headers.emplace_back("Pragma", "no-cache");
    r.headers.emplace_back("Cache-Control", "no-cache");
  }
  return r.status == 200 ? json_or_jsonp(std::move(r), jsonp) : r;
}

ApiResponse ApiRoutes::expand(std::string_view query) {
  // graphite-web's expand_view: every path the queries match (branches too unless
  // leavesOnly=1), one sorted list, or one per query with groupByExpr=1.
  std::vector<std::string> queries;
  std::string jsonp;
  bool group_by_expr = false, leaves_only = false;
  for (auto& [key, value] : parse_query(query)) {
    if (key == "query") queries.push_back(value);
    else if (key == "groupByExpr") group_by_expr = value == "1";
    else if (key == "leavesOnly") leaves_only = value == "1";
    else if (key == "jsonp") jsonp = value;
  }
  if (!valid_jsonp(jsonp)) return json_error(400, "jsonp: not a function name");
  if (queries.size() > read_limits_.max_targets) {
    return json_error(400, std::to_string(queries.size()) + " queries, over the limit of " +
                               std::to_string(read_limits_.max_targets));
  }
  std::map<std::string, std::set<std::string>> by_query;
  std::set<std::string> all;
  for (const std::string& q : queries) {
    auto found = found_nodes(q);
    if (!found) {
      bool limit = found.error().message.starts_with("the answer");
      return json_error(limit ? 413 : 400, found.error().message, found.error().hint);
    }
    auto& mine = by_query[q];
    for (const FoundNode& n : *found) {
      if (!n.leaf && leaves_only) continue;
      mine.insert(n.path);
      all.insert(n.path);
    }
  }
  nlohmann::json results;
  if (group_by_expr) {
    results = nlohmann::json::object();
    for (auto& [q, paths] : by_query) results[q] = paths;
  } else {
    results = all;
  }
  ApiResponse r = bounded_json({{"results", results}});
  return r.status == 200 ? json_or_jsonp(std::move(r), jsonp) : r;
}

ApiResponse ApiRoutes::metrics_index(std::string_view query) {
  std::string jsonp;
  for (auto& [key, value] : parse_query(query))
    if (key == "jsonp") jsonp = value;
  if (!valid_jsonp(jsonp)) return json_error(400, "jsonp: not a function name");
  auto paths = store_.all_paths(read_limits_);
  if (!paths) return json_error(413, paths.error().message, paths.error().hint);
  ApiResponse r = bounded_json(*paths);
  return r.status == 200 ? json_or_jsonp(std::move(r), jsonp) : r;
}

ApiResponse ApiRoutes::functions(std::string_view path, std::string_view query) {
  // graphite-web's /functions: {name: info} (grouped=1: {group: {name: info}}, group=G: that
  // group only); /functions/NAME: one info. Exactly the functions /render implements.
  bool grouped = false;
  std::optional<std::string> group;
  for (auto& [key, value] : parse_query(query)) {
    if (key == "grouped") grouped = value == "1" || value == "true" || value == "True";
    else if (key == "group") group = value;
  }
  auto info = [](const render::FunctionInfo& f) {
    nlohmann::json params = nlohmann::json::array();
    for (const render::FunctionParam& p : f.param_list) {
      nlohmann::json j = {{"name", p.name}, {"type", p.type}, {"required", p.required}};
      if (p.multiple) j["multiple"] = true;
      params.push_back(std::move(j));
    }
    return nlohmann::json{{"name", f.name},
                          {"function", f.name + "(" + f.params + ")"},
                          {"description", f.description},
                          {"module", "statherd.render"},
                          {"group", f.group},
                          {"params", params}};
  };
  if (path.starts_with("/functions/")) {
    std::string name(path.substr(std::string_view("/functions/").size()));
    for (const render::FunctionInfo& f : render::function_list())
      if (f.name == name) return json_ok(info(f));
    return json_error(404, "function not found: " + name, "GET /functions lists them");
  }
  nlohmann::json out = nlohmann::json::object();
  for (const render::FunctionInfo& f : render::function_list()) {
    if (group && *group != f.group) continue;
    if (grouped) out[f.group][f.name] = info(f);
    else out[f.name] = info(f);
  }
  return json_ok(out);
}

ApiResponse ApiRoutes::healthz() {
  EngineStats s = engine_.stats();
  return json_ok({{"status", "ok"},
                  {"batches", s.batches},
                  {"duplicates", s.duplicates},
                  {"samples_in", s.samples_in},
                  {"series", s.series},
                  {"sources", s.sources},
                  {"series_rejected", s.series_rejected},
                  {"memory_paths", store_.path_count()}});
}

}  // namespace statherd::server

namespace statherd::server {

namespace {

// graphite-web's int(limit): a count, or nullopt and an error answer.
std::optional<size_t> parse_limit(const std::string& text, ApiResponse& error) {
  if (text.empty()) return size_t{0};
  size_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size()) {
    error = json_error(400, "limit '" + text.substr(0, 64) + "' is not a count",
                       "a non-negative integer, e.g. limit=100");
    return std::nullopt;
  }
  return n;
}

// A MemoryStore tag read's error: a 413 for a read limit, else a 400.
ApiResponse tag_error(const Error& e) {
  const bool limit = e.message.starts_with("the answer") || e.message.starts_with("the tag query");
  return json_error(limit ? 413 : 400, e.message, e.hint);
}

}  // namespace

ApiResponse ApiRoutes::tags(std::string_view path, std::string_view query) {
  if (path == "/tags/tagSeries" || path == "/tags/tagMultiSeries" || path == "/tags/delSeries") {
    return json_error(400, "statherd's tags are the samples' labels: it takes no tag writes",
                      "send samples with labels, with graphite.tags: true");
  }
  // graphite-web 1.1.8's tags/views.py over its local tag database (tags/localdatabase.py).
  std::vector<std::string> exprs, bracket_exprs;
  std::string filter, limit_text, tag, prefix;
  bool has_filter = false;
  for (auto& [key, value] : parse_query(query)) {
    if (key == "expr")
      exprs.push_back(value);
    else if (key == "expr[]")
      bracket_exprs.push_back(value);
    else if (key == "filter")
      filter = value, has_filter = !value.empty();
    else if (key == "limit")
      limit_text = value;
    else if (key == "tag")
      tag = value;
    else if (key == "tagPrefix" || key == "valuePrefix")
      prefix = value;
  }
  if (exprs.empty()) exprs = std::move(bracket_exprs);
  if (exprs.size() > read_limits_.max_targets) {
    return json_error(400, std::to_string(exprs.size()) + " tag expressions, over the limit of " +
                               std::to_string(read_limits_.max_targets));
  }
  ApiResponse error;
  auto limit = parse_limit(limit_text, error);
  if (!limit) return error;
  std::optional<TagFilter> compiled_filter;
  if (has_filter) {
    auto f = TagFilter::compile(filter);
    if (!f) return json_error(400, f.error().message, f.error().hint);
    compiled_filter.emplace(std::move(*f));
  }
  const TagFilter* filter_ptr = compiled_filter ? &*compiled_filter : nullptr;

  if (path == "/tags") {  // [{"tag": ...}], sorted
    nlohmann::json out = nlohmann::json::array();
    for (const std::string& n : store_.tag_names(filter_ptr, *limit)) out.push_back({{"tag", n}});
    return bounded_json(out);
  }
  if (path == "/tags/findSeries") {  // the matching paths, sorted
    if (exprs.empty()) return json_error(400, "no tag expressions specified", "expr=name=a.b");
    auto q = TagQuery::compile(exprs);
    if (!q) return json_error(400, q.error().message, q.error().hint);
    uint64_t steps = read_limits_.max_match_steps;
    auto paths = store_.find_tagged(*q, steps, read_limits_.max_paths);
    if (!paths) return tag_error(paths.error());
    return bounded_json(*paths);
  }
  const bool complete_tags = path == "/tags/autoComplete/tags";
  if (complete_tags || path == "/tags/autoComplete/values") {
    // graphite-web's TAGDB_AUTOCOMPLETE_LIMIT when no limit is given
    const size_t n = limit_text.empty() ? 100 : *limit;
    if (!complete_tags && tag.empty()) return json_error(400, "no tag specified", "tag=name");
    std::set<std::string> found;
    if (exprs.empty()) {
      if (complete_tags) {
        for (const std::string& t : store_.tag_names(nullptr, 0))
          if (t.starts_with(prefix)) found.insert(t);
      } else {
        auto values = store_.tag_values(tag, nullptr, 0);
        for (const auto& v : values.value_or(std::vector<MemoryStore::TagValueCount>{}))
          if (v.value.starts_with(prefix)) found.insert(v.value);
      }
    } else {
      std::vector<std::string> all = exprs;
      if (!complete_tags) all.push_back(tag + "!=");  // the series that have the tag
      auto q = TagQuery::compile(all);
      if (!q) return json_error(400, q.error().message, q.error().hint);
      const std::vector<std::string> searched = q->tags();
      // every match's tags (or values): as many series as reads.max_match_steps allows
      uint64_t steps = read_limits_.max_match_steps;
      auto walked = store_.for_each_tagged(*q, steps, [&](std::string_view, const TagMap& tags) {
        if (complete_tags) {
          for (const auto& [k, v] : tags) {
            if (std::find(searched.begin(), searched.end(), k) == searched.end() &&
                k.starts_with(prefix))
              found.insert(k);
          }
        } else if (auto it = tags.find(tag); it != tags.end() && it->second.starts_with(prefix)) {
          found.insert(it->second);
        }
        return found.size() <= read_limits_.max_paths;
      });
      if (!walked) return tag_error(walked.error());
    }
    nlohmann::json out = nlohmann::json::array();
    for (const std::string& f : found) {
      if (n > 0 && out.size() == n) break;
      out.push_back(f);
    }
    return bounded_json(out);
  }
  // /tags/<tag>: {"tag", "values": [{"value", "count"}]}, or null for a tag no path has
  const std::string name = percent_decode(path.substr(std::string_view("/tags/").size()), false);
  auto values = store_.tag_values(name, filter_ptr, *limit);
  if (!values) return json_ok(nullptr);
  nlohmann::json list = nlohmann::json::array();
  for (const auto& v : *values) list.push_back({{"value", v.value}, {"count", v.count}});
  return bounded_json({{"tag", name}, {"values", std::move(list)}});
}

ApiResponse ApiRoutes::events(std::string_view query) {
  // graphite-web's /events/get_data, for Grafana's annotations: statherd records no events,
  // so the answer is the empty list, after the times are checked as graphite-web checks them.
  std::string jsonp;
  const int64_t now_s = now_ms_() / 1000;
  for (auto& [key, value] : parse_query(query)) {
    if (key == "jsonp") jsonp = value;
    if (key == "from" || key == "until") {
      auto t = parse_graphite_time(value, now_s);
      if (!t) return json_error(400, key + ": " + t.error().message, t.error().hint);
    }
  }
  if (!valid_jsonp(jsonp)) return json_error(400, "jsonp: not a function name");
  return json_or_jsonp(json_ok(nlohmann::json::array()), jsonp);
}

}  // namespace statherd::server
