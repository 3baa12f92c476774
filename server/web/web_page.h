// The live web page at GET / and its script at GET /static/app.js. The page is rendered on the
// server (apps, hosts and processes reporting: readable with JavaScript disabled); the script
// polls /render for the chosen metric and draws small SVG charts. Everything that comes from the
// data (app, host, metric names, paths, error messages) is HTML-escaped; nothing secret is used.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/memory_store.h"

namespace statherd::server::web {

// The headers every web response carries: a strict Content-Security-Policy (script-src 'self',
// no inline script, connect-src 'self'), nosniff, no referrer, no framing.
inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
    "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

// & < > " ' -> entities; safe in element text and in double- or single-quoted attributes.
std::string html_escape(std::string_view text);

// Metric paths (a Graphite path without its final stat component, e.g. "statherd.api.requests")
// that have leaf stats in the store, found by walking /metrics/find from the root; sorted, at
// most `limit`, visiting at most `max_nodes` nodes.
std::vector<std::string> metric_choices(const MemoryStore& store, size_t limit = 500,
                                        size_t max_nodes = 20'000);

struct PageInput {
  nlohmann::json sources;               // Engine::sources_json
  std::vector<std::string> metrics;     // metric_choices
  std::string chosen_metric;            // ?metric=, may be empty or not in `metrics`
  int64_t now_ms = 0;
  int64_t refresh_ms = 10'000;          // how often the script polls /render
};

// The whole HTML document (inline CSS, <script src="/static/app.js">, no inline script).
std::string render_index(const PageInput& input);

// The chart script served at /static/app.js.
std::string_view app_js();

}  // namespace statherd::server::web
