// libFuzzer target: the /render and /metrics/find query handling (query string, target glob
// patterns with braces, sets and stars, from/until, maxDataPoints) through the API's stable entry
// point, ApiRoutes::handle, over a small store (now with Graphite's functions: the target
// grammar and the evaluator). It must never crash, and always answer JSON.
// The first input byte picks the route; the rest is the query string.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/api_routes.h"
#include "tests/unit/rollup_test_util.h"

namespace {

using namespace statherd::server;

struct World {
  World()
      : engine(options()), store(MemoryStoreOptions{}),
        routes(token, engine, store, [] { return int64_t{2'000'000'000}; }, routes_options()) {
    for (int64_t t = 1'999'990; t <= 2'000'000; t += 10) {
      IntervalOutput out;
      out.start_s = t;
      out.interval_s = 10;
      for (const char* app : {"web", "api", "a_p_p"})
        for (const char* metric : {"req.count", "lat", "q{1}.x*"}) {
          SeriesPoint p;
          p.app = app;
          p.metric = metric;
          p.stat = "rate";
          p.value = static_cast<double>(t % 7);
          testing::append_point(out, p);
        }
      store.emit(out);
    }
  }
  static EngineOptions options() {
    EngineOptions o;
    o.fsync = false;
    return o;
  }
  // Small bounds: every limit check is reached by short inputs, and no input spends the
  // fuzzer's time filling a 500k-point answer (the default limits are tested in
  // api_routes_test and test_read_abuse).
  static ApiRoutesOptions routes_options() {
    ApiRoutesOptions o;
    o.reads.max_targets = 8;
    o.reads.max_alternatives = 64;
    o.reads.max_paths = 64;
    o.reads.max_match_steps = 100'000;
    o.reads.max_points = 5'000;
    o.reads.max_points_read = 50'000;
    o.reads.max_answer_bytes = 256 << 10;
    return o;
  }
  IngestToken token{"tok"};
  Engine engine;
  MemoryStore store;
  ApiRoutes routes;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = new World();
  if (size == 0) return 0;
  std::string target = (data[0] & 1) ? "/metrics/find?" : "/render?";
  target.append(reinterpret_cast<const char*>(data + 1), size - 1);
  ApiResponse r = world->routes.handle({"GET", target, "", ""});
  if (r.content_type == "application/json") {
    // An infinite value is written 1e9999, as graphite-web writes it: valid JSON grammar
    // (Python and JavaScript read it as Infinity) that nlohmann's parser refuses as out of range.
    std::string body = r.body;
    for (const std::string inf : {"[1e9999,", "[-1e9999,"}) {  // a datapoint's value only
      for (size_t at; (at = body.find(inf)) != std::string::npos;)
        body.replace(at, inf.size(), "[0,");
    }
    if (!nlohmann::json::accept(body)) std::abort();
  }
  return 0;
}
