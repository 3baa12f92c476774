#include "server/web/web_page.h"

#include <gtest/gtest.h>

#include "server/api_routes.h"
#include "rollup_test_util.h"

namespace statherd::server {
namespace {

constexpr const char* kHostile = "<script>alert('x')</script>&\"";

nlohmann::json hostile_sources() {
  nlohmann::json source = {{"host", std::string("h<b>") + kHostile},
                           {"app", std::string("app\"><img src=x onerror=alert(1)>")},
                           {"pid", 4242},
                           {"start_time_ms", 1'700'000'000'000},
                           {"path", "/tmp/<evil>.mmstats"},
                           {"last_seen_ms", 1'700'000'100'000},
                           {"series", 3},
                           {"errors", nlohmann::json::array({"bad <header>"})}};
  nlohmann::json second = source;
  second["host"] = "web-2";
  second["pid"] = 77;
  nlohmann::json agent = {{"agent_id", "agent<1>"}, {"last_seq", 9}, {"last_seen_ms", 1},
                          {"errors", nlohmann::json::array({{{"source", "/x<y"},
                                                             {"message", "torn <write>"}}})}};
  return {{"agents", nlohmann::json::array({agent})},
          {"sources", nlohmann::json::array({source, second})}};
}

TEST(HtmlEscape, EscapesEveryMarkupCharacter) {
  EXPECT_EQ(web::html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(web::html_escape("statherd.api.p99"), "statherd.api.p99");
  EXPECT_EQ(web::html_escape(""), "");
}

TEST(WebPage, HostileNamesAreEscapedEverywhere) {
  web::PageInput in;
  in.sources = hostile_sources();
  in.metrics = {"statherd.ok.metric", std::string("statherd.") + kHostile};
  in.chosen_metric = std::string("statherd.") + kHostile;
  in.now_ms = 1'700'000'105'000;
  std::string html = web::render_index(in);
  // The only <script> is the external one; no data-derived markup survives.
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<evil>"), std::string::npos);
  EXPECT_EQ(html.find("<header>"), std::string::npos);
  EXPECT_EQ(html.find("alert('x')"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"),
            std::string::npos);
  EXPECT_NE(html.find("app&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
  EXPECT_NE(html.find("/tmp/&lt;evil&gt;.mmstats"), std::string::npos);
  EXPECT_NE(html.find("torn &lt;write&gt;"), std::string::npos);
  EXPECT_NE(html.find("<script src=\"/static/app.js\" defer></script>"), std::string::npos);
  // The chosen metric is an attribute value and a selected option, both escaped.
  EXPECT_NE(html.find("data-metric=\"statherd.&lt;script&gt;"), std::string::npos);
  EXPECT_NE(html.find("selected>statherd.&lt;script&gt;"), std::string::npos);
}

TEST(WebPage, ListsAreInTheHtmlWithoutJavaScript) {
  web::PageInput in;
  in.sources = hostile_sources();
  in.sources["sources"][1]["app"] = "billing";
  in.now_ms = 1'700'000'105'000;
  std::string html = web::render_index(in);
  EXPECT_NE(html.find("<section id=\"apps\"><h2>Apps (2)</h2>"), std::string::npos);
  EXPECT_NE(html.find("<section id=\"hosts\"><h2>Hosts (2)</h2>"), std::string::npos);
  EXPECT_NE(html.find("<section id=\"processes\"><h2>Processes (2)</h2>"), std::string::npos);
  EXPECT_NE(html.find("<b>billing</b>"), std::string::npos);
  EXPECT_NE(html.find("<b>web-2</b>"), std::string::npos);
  EXPECT_NE(html.find("<td>4242</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>77</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>2023-11-14 22:13:20Z</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>5 s ago</td>"), std::string::npos);
  EXPECT_NE(html.find("<b>agent&lt;1&gt;</b>"), std::string::npos);
}

TEST(WebPage, EmptyServerSaysNoneReporting) {
  web::PageInput in;
  in.sources = {{"agents", nlohmann::json::array()}, {"sources", nlohmann::json::array()}};
  std::string html = web::render_index(in);
  EXPECT_NE(html.find("<h2>Processes (0)</h2><p class=\"none\">none reporting</p>"),
            std::string::npos);
  EXPECT_NE(html.find("choose a metric"), std::string::npos);
}

IntervalOutput points(std::vector<std::pair<std::string, std::string>> metric_stats) {
  IntervalOutput out;
  out.start_s = 1000;
  for (auto& [metric, stat] : metric_stats) {
    SeriesPoint p;
    p.app = "api";
    p.metric = metric;
    p.stat = stat;
    p.value = 1;
    testing::append_point(out, p);
  }
  return out;
}

TEST(MetricChoices, WalksFindToEveryMetricWithStats) {
  MemoryStore store(MemoryStoreOptions{});
  store.emit(points({{"requests", "rate"}, {"requests", "p99"}, {"db.query", "p50"},
                     {"db", "count"}}));
  EXPECT_EQ(web::metric_choices(store),
            (std::vector<std::string>{"statherd.api.db", "statherd.api.db.query",
                                      "statherd.api.requests"}));
  EXPECT_EQ(web::metric_choices(store, 1).size(), 1u);
  EXPECT_TRUE(web::metric_choices(MemoryStore(MemoryStoreOptions{})).empty());
}

TEST(WebRoutes, PageAndScriptCarryCspAndCacheHeaders) {
  EngineOptions options;
  options.fsync = false;
  Engine engine(options);
  MemoryStore store(MemoryStoreOptions{});
  store.emit(points({{"requests", "rate"}}));
  IngestToken token("s3cret-token");
  ApiRoutes routes(token, engine, store, [] { return int64_t{2'000'000}; });
  ApiResponse page = routes.handle({"GET", "/?metric=statherd.api.requests", "", ""});
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(page.body.find("s3cret-token"), std::string::npos);
  EXPECT_NE(page.body.find("<option value=\"statherd.api.requests\" selected>"), std::string::npos);
  auto header = [](const ApiResponse& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
      if (k == name) return v;
    return std::string();
  };
  EXPECT_NE(header(page, "Content-Security-Policy").find("script-src 'self';"), std::string::npos);
  EXPECT_EQ(header(page, "Content-Security-Policy").find("unsafe-eval"), std::string::npos);
  EXPECT_EQ(header(page, "Cache-Control"), "no-store");
  ApiResponse script = routes.handle({"GET", "/static/app.js", "", ""});
  ASSERT_EQ(script.status, 200);
  EXPECT_EQ(script.content_type, "text/javascript; charset=utf-8");
  EXPECT_NE(script.body.find("/render?format=json"), std::string::npos);
  EXPECT_EQ(script.body.find("innerHTML"), std::string::npos);
  EXPECT_EQ(header(script, "Cache-Control"), "no-cache");
  EXPECT_EQ(routes.handle({"POST", "/", "", ""}).status, 405);
}

}  // namespace
}  // namespace statherd::server
