// GET /static/app.js: polls /render for the chosen metric and draws one small SVG line chart per
// stat (rate first, then percentiles, then the rest). Data only ever reaches the DOM through
// textContent and setAttribute, never as markup. Each drawn point carries data-ts, data-value
// and a <title>, so tests (and people hovering) read the exact value the chart shows.
#include "server/web/web_page.h"

namespace statherd::server::web {

namespace {

constexpr std::string_view kAppJs = R"js("use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var W = 260, H = 90, PAD = 4;

  function statRank(target) {
    var stat = target.slice(target.lastIndexOf(".") + 1);
    if (stat === "rate") return "0";
    if (/^p\d+/.test(stat)) return "1" + ("0000" + stat.replace(/\D/g, "")).slice(-4) + stat;
    return "2" + stat;
  }

  function svgEl(name, attrs) {
    var el = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, String(attrs[k])); });
    return el;
  }

  function chart(series) {
    var pts = series.datapoints.filter(function (p) { return typeof p[0] === "number"; });
    var fig = document.createElement("figure");
    fig.className = "chart";
    fig.setAttribute("data-target", series.target);
    var cap = document.createElement("figcaption");
    var last = pts.length ? pts[pts.length - 1][0] : null;
    cap.textContent = series.target + " = " + (last === null ? "no data" : String(last));
    var svg = svgEl("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img"});
    svg.appendChild(svgEl("line", {"class": "axis", x1: 0, y1: H - PAD, x2: W, y2: H - PAD}));
    var all = series.datapoints;  // x: from the first point with a value to the window's end
    var t0 = pts.length ? pts[0][1] : 0, t1 = all.length ? all[all.length - 1][1] : 1;
    var vs = pts.map(function (p) { return p[0]; });
    var lo = Math.min.apply(null, vs.concat([0])), hi = Math.max.apply(null, vs.concat([0]));
    if (hi === lo) hi = lo + 1;
    function x(t) { return PAD + (t1 > t0 ? (t - t0) / (t1 - t0) : 0.5) * (W - 2 * PAD); }
    function y(v) { return H - PAD - (v - lo) / (hi - lo) * (H - 2 * PAD); }
    var coords = pts.map(function (p) { return x(p[1]).toFixed(1) + "," + y(p[0]).toFixed(1); });
    svg.appendChild(svgEl("polyline", {"class": "line", points: coords.join(" ")}));
    pts.forEach(function (p) {
      var c = svgEl("circle", {"class": "pt", cx: x(p[1]).toFixed(1), cy: y(p[0]).toFixed(1),
                               r: 2, "data-ts": p[1], "data-value": String(p[0])});
      var title = document.createElementNS(SVG, "title");
      title.textContent = new Date(p[1] * 1000).toISOString() + " " + String(p[0]);
      c.appendChild(title);
      svg.appendChild(c);
    });
    var label = svgEl("text", {x: PAD, y: 12});
    label.textContent = "max " + String(hi);
    svg.appendChild(label);
    fig.appendChild(cap);
    fig.appendChild(svg);
    return fig;
  }

  function draw(box, data, polls) {
    data.sort(function (a, b) {
      var ra = statRank(a.target), rb = statRank(b.target);
      return ra < rb ? -1 : ra > rb ? 1 : 0;
    });
    while (box.firstChild) box.removeChild(box.firstChild);
    if (!data.length) {
      var p = document.createElement("p");
      p.className = "none";
      p.textContent = "no data for " + box.getAttribute("data-metric") + ".* yet";
      box.appendChild(p);
    }
    data.forEach(function (series) { box.appendChild(chart(series)); });
    box.setAttribute("data-polls", String(polls));
  }

  function start() {
    var select = document.getElementById("metric-select");
    if (select) select.addEventListener("change", function () { select.form.submit(); });
    var box = document.getElementById("charts");
    var metric = box ? box.getAttribute("data-metric") : "";
    if (!metric) return;
    var every = Math.max(1000, parseInt(box.getAttribute("data-refresh-ms"), 10) || 10000);
    var url = "/render?format=json&from=-10min&target=" + encodeURIComponent(metric + ".*");
    var polls = 0;
    function poll() {
      fetch(url, {cache: "no-store", credentials: "omit"})
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (data) { polls += 1; draw(box, data, polls); })
        .catch(function (e) { box.setAttribute("data-error", String(e)); })
        .then(function () { setTimeout(poll, every); });
    }
    poll();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
)js";

}  // namespace

std::string_view app_js() { return kAppJs; }

}  // namespace statherd::server::web
