// The HTTP API without any transport: route, authenticate, call Engine/MemoryStore, answer JSON.
// http_server.cpp (Beast) only moves bytes to and from here, so this is testable without sockets.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/engine.h"
#include "server/ingest_token.h"
#include "server/memory_store.h"
#include "server/read_limits.h"

namespace statherd::server {

// "%41+b" -> "A b" (when plus_is_space); a bad %-escape is kept literally.
std::string percent_decode(std::string_view text, bool plus_is_space = true);
// "a=1&b=x%20y&a=2" -> {{"a","1"},{"b","x y"},{"a","2"}} in order; a key without '=' has "".
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query);

struct ApiRequest {
  std::string_view method;         // "GET", "POST", ...
  std::string_view target;         // "/render?target=a.b&from=-10min"
  std::string_view authorization;  // the Authorization header, may be empty
  std::string_view body;
};

struct ApiResponse {
  int status = 200;
  // Sent before `body`: one immutable text shared by concurrent answers (GET /metrics).
  std::shared_ptr<const std::string> shared_body;
  std::string body;
  std::string content_type = "application/json";
  std::string allow;  // for 405: the allowed method
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (web page: CSP, cache)
};

ApiResponse json_error(int status, std::string_view message, std::string_view hint = {});

// GET /metrics: the text of every rolled-up series (shared by the answers of one interval)
// and the answer's own rest (the self-metrics).
struct ScrapeText {
  std::shared_ptr<const std::string> shared;
  std::string own;
};
// Runs on the io thread (what reads the Engine); returns what the read thread runs.
using PrepareScrape = std::function<std::function<ScrapeText()>()>;
// A PrepareScrape whose whole text comes from one function run on the read thread (tests, a
// sink without self-metrics).
PrepareScrape scrape_from_text(std::function<std::string()> scrape_text);

// What the routes serve besides the Engine and the MemoryStore, all given at construction.
struct ApiRoutesOptions {
  ReadLimits reads;  // bounds on each read request (config reads.*)
  // GET /readyz: returns {"ready": bool, ...checks}; 503 when not ready. Unset: always ready.
  std::function<nlohmann::json()> readiness;
  // GET /metrics answers with the text of prometheus_scrape()() (Prometheus text exposition
  // 0.0.4): the first step on the io thread, the second on the read thread. Unset: 404.
  PrepareScrape prometheus_scrape;
  // GET /api/v1/cluster: the cluster as this server sees it (server/cluster_coordinator.h).
  // Unset: 404 (no etcd section).
  std::function<nlohmann::json()> cluster;
};

class ApiRoutes {
 public:
  // `token` is read at every ingest (a SIGHUP reload replaces it there); it outlives the routes.
  ApiRoutes(const IngestToken& token, Engine& engine, MemoryStore& store,
            std::function<int64_t()> now_ms, ApiRoutesOptions options = {});

  // The path part of a target ("/render" of "/render?x=1").
  static std::string_view path_of(std::string_view target);
  // True if the path needs the bearer token (ingest).
  static bool needs_token(std::string_view path);
  // "Bearer <token>" with the right token.
  bool authorized(std::string_view authorization) const;
  // 404 / 405 / 401 before reading a body; nullopt-like: status 0 means "go on".
  ApiResponse check_head(std::string_view method, std::string_view target,
                         std::string_view authorization) const;

  ApiResponse handle(const ApiRequest& request);
  // The answer to an ingest (POST /api/v1/ingest) the Engine decided.
  static ApiResponse ingest_response(const IngestOutcome& outcome);

  // Read requests (/render, /metrics/find, /metrics, /api/v1/sources, the web page) run on the
  // HTTP server's read thread, so no read delays ingest or /healthz. prepare_read() runs on
  // the io thread (it does what needs the Engine) and returns what runs on the read thread
  // (what needs the MemoryStore, collecting and serializing); an empty function for every
  // other route. The request's strings are copied.
  static bool is_read_path(std::string_view path);
  std::function<ApiResponse()> prepare_read(const ApiRequest& request);

  const ReadLimits& read_limits() const { return read_limits_; }

 private:
  ApiResponse ingest(std::string_view body);
  ApiResponse render(std::string_view query);
  ApiResponse find(std::string_view query);
  ApiResponse expand(std::string_view query);       // /metrics/expand
  ApiResponse metrics_index(std::string_view query);  // /metrics/index.json
  ApiResponse functions(std::string_view path, std::string_view query);  // /functions[/NAME]
  // /tags, /tags/<tag>, /tags/findSeries, /tags/autoComplete/tags|values
  ApiResponse tags(std::string_view path, std::string_view query);
  ApiResponse events(std::string_view query);  // /events/get_data
  // The nodes a find pattern matches, as graphite-web's STORE.find gives them: sorted by name
  // (then path), each (path, name, leaf); an error response when a read limit is passed.
  struct FoundNode {
    std::string path, name;
    bool leaf = false;
  };
  Result<std::vector<FoundNode>> found_nodes(const std::string& pattern);
  ApiResponse bounded_json(const nlohmann::json& body) const;  // 413 over max_answer_bytes
  ApiResponse bounded(ApiResponse r) const;                    // the same for a made answer
  ApiResponse healthz();
  ApiResponse readyz();
  ApiResponse prometheus_metrics();
  std::function<ApiResponse()> prepare_metrics();

  const IngestToken& token_;
  Engine& engine_;
  MemoryStore& store_;
  std::function<int64_t()> now_ms_;
  const PrepareScrape prometheus_scrape_;
  const std::function<nlohmann::json()> readiness_;
  const std::function<nlohmann::json()> cluster_;
  const ReadLimits read_limits_;
};

}  // namespace statherd::server
