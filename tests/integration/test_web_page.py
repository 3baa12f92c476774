"""The live web page at GET / (writers -> agent -> server): the lists are in the server-rendered
HTML (no script needed; Chromium's --dump-dom cannot run with scripts disabled), and headless Chromium, after the page's script
ran, shows in its SVG charts exactly the values /render reports for the same metric. A
screenshot is saved as a test artifact in the build dir."""

import html.parser
import os
import shutil
import subprocess
import tempfile
import urllib.parse

import harness
from pipeline import HOST, PipelineTestCase, sum_by_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
APP = "webapp"


def ensure_chromium():
    if os.access(CHROMIUM, os.X_OK):
        return
    script = os.path.join(harness.SOURCE_DIR, "scripts", "install-deps.sh")
    subprocess.run(["bash", script, "test"], check=True, timeout=900)


def chromium(workdir, url, *extra):
    """Runs headless Chromium on url with a fresh profile; returns its stdout (e.g. the DOM)."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=workdir)
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
            *extra, url]
    done = subprocess.run(argv, capture_output=True, timeout=180,
                          env=dict(os.environ, HOME=profile))
    if done.returncode != 0:
        raise AssertionError(f"chromium exited with {done.returncode}:\n"
                             f"{done.stderr.decode(errors='replace')[-3000:]}")
    return done.stdout.decode(errors="replace")


class ChartReader(html.parser.HTMLParser):
    """Collects the charts drawn by app.js: {target: {ts: value}}, and the #charts attributes."""

    def __init__(self):
        super().__init__()
        self.charts, self.box, self.sections = {}, {}, set()
        self._target = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and a.get("id"):
            self.sections.add(a["id"])
        if a.get("id") == "charts":
            self.box = a
        if tag == "figure" and "data-target" in a:
            self._target = a["data-target"]
            self.charts[self._target] = {}
        if tag == "circle" and "data-value" in a and self._target is not None:
            self.charts[self._target][int(a["data-ts"])] = float(a["data-value"])


def read_charts(dom):
    reader = ChartReader()
    reader.feed(dom)
    return reader


class WebPageTest(PipelineTestCase):
    counter_patterns = ("*.count",)

    def setUp(self):
        ensure_chromium()
        super().setUp()

    def test_page_lists_sources_and_charts_match_render(self):
        self.start_pipeline(with_carbon=False)
        writers = self.start_writers([(APP, 0)], counters=2, rate=50, duration=3)
        for w in writers:
            w.wait_done(timeout=60)
        name, total = sorted(sum_by_app(writers)[APP].items())[0]
        metric = f"statherd.{APP}.{name}"
        harness.wait_for(lambda: self.count_sum(metric) == total, 60, interval=0.2,
                         what=f"sum of {metric}.count == {total} in /render")

        self.check_server_rendered_page(metric)
        url = f"{self.server.url}/?metric={urllib.parse.quote(metric)}"
        charts = harness.wait_for(lambda: self.drawn_charts(url), 120, interval=0.5,
                                  what="charts drawn by app.js in headless Chromium")
        self.check_charts_equal_render(metric, charts, total)
        self.save_screenshot(url)

    def count_sum(self, metric):
        series = self.server.render(metric + ".count")
        return sum(v for s in series for v, _ in s["datapoints"] if v is not None)

    def check_server_rendered_page(self, metric):
        status, body = harness.http_request(self.server.url + "/", timeout=5)
        self.assertEqual(status, 200)
        page = body.decode()
        # The lists are in the HTML as served, before any script runs (JavaScript disabled).
        sections = read_charts(page).sections
        self.assertTrue({"apps", "hosts", "processes", "agents"} <= sections, sections)
        self.assertIn(f"<b>{APP}</b>", page)
        self.assertIn(f"<b>{HOST}</b>", page)
        self.assertIn(f'<option value="{metric}">{metric}</option>', page)
        self.assertIn('<script src="/static/app.js" defer></script>', page)
        self.assertNotIn(harness.TOKEN, page)
        with open(self.token_file) as f:
            self.assertNotIn(f.read().strip(), page)

    def drawn_charts(self, url):
        page = read_charts(chromium(self.workdir, url, "--dump-dom"))
        self.assertNotIn("data-error", page.box, page.box)
        if int(page.box.get("data-polls", "0")) < 1 or not page.charts:
            return None
        return page.charts

    def check_charts_equal_render(self, metric, charts, total):
        rendered = {s["target"]: {ts: v for v, ts in s["datapoints"] if v is not None}
                    for s in self.server.render(metric + ".*")}
        self.assertIn(metric + ".rate", charts)
        self.assertIn(metric + ".count", charts)
        self.assertEqual(set(charts), set(rendered))
        for target, points in charts.items():
            self.assertTrue(points, f"{target}: no points drawn")
            for ts, value in points.items():
                self.assertIn(ts, rendered[target], f"{target}: drawn ts {ts} not in /render")
                self.assertEqual(value, rendered[target][ts], f"{target} at {ts}")
        self.assertEqual(sum(charts[metric + ".count"].values()), total)
        print(f"\nweb page: {len(charts)} charts of {metric}.* equal /render "
              f"({sum(len(p) for p in charts.values())} points)")

    def save_screenshot(self, url):
        artifacts = os.path.join(harness.bin_dir(), "test-artifacts")
        os.makedirs(artifacts, exist_ok=True)
        path = os.path.join(artifacts, "web_page.png")
        if os.path.exists(path):
            os.remove(path)
        chromium(self.workdir, url, f"--screenshot={path}", "--window-size=1200,1000",
                 "--hide-scrollbars")
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        print(f"web page screenshot: {path}")


if __name__ == "__main__":
    import unittest
    unittest.main()
