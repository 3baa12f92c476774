"""/render against the real graphite-web (issue #11): the same requests to both, same answers.

Real processes on loopback: a carbon-cache (1 s Whisper files), statherd-server (interval 1 s,
memory retention 1s:2h, its Graphite sink writing to that carbon-cache), two statherd-agents
(hosts h1, h2) reading Scales endpoints whose values change every second (varying_scales.py:
a meter, a cycling gauge, a gauge with gaps, a counter), and graphite-web 1.1 reading the
Whisper files statherd's sink wrote. After ~45 s of data the agents stop; every request of
REQUESTS goes to both servers over the same absolute window (and `now`), most of them as the
form POST Grafana sends, and the answers must be identical point for point: target names,
timestamps, nulls, values (to 1e-9 relative; graphite-web computes in Python floats too).
"""

import datetime
import json
import math
import os
import shutil
import sys
import tempfile
import time
import unittest
import urllib.parse
import zoneinfo

import carbon_fixture
import graphite_web_fixture
import harness

HERE = os.path.dirname(os.path.abspath(__file__))

# Shorthands in the requests below.
Q = "statherd.web.hosts.*.queue.depth.mean"       # 2 series, a cycling gauge
QA = "statherd.*.hosts.*.queue.depth.mean"        # 4 series
L = "statherd.web.hosts.*.latency.ms.mean"        # 2 series with gaps (nulls)
R = "statherd.*.requests.count.count"             # 2 series, requests per interval
E = "statherd.*.errors.rate"                      # 2 series, a counter's rate

TARGETS = [
    # paths and globs
    Q, QA, L, R, E, "statherd.{web,api}.queue.depth.max", "statherd.web.hosts.h1.requests.m1.mean",
    "statherd.web.hosts.h[12].queue.depth.p9?", "statherd.nosuch.*",
    # Alias
    f'alias({Q},"queue")', f'aliasSub({Q},"hosts\\.(h\\d)","host-\\1")', f"aliasByNode({Q},3)",
    f"aliasByNode({QA},1,3,-1)", f"aliasByMetric({Q})", f"aliasByNode(sumSeries({QA}),1)",
    f"aliasByNode(scale({Q},2),3)", f"substr({Q},2,4)",
    # Combine
    f"sumSeries({Q})", f"sum({Q},{R})", f"averageSeries({Q})", f"avg({L})", f"maxSeries({Q})",
    f"minSeries({L})", f"diffSeries({Q})", f"multiplySeries({Q})", f"stddevSeries({QA})",
    f"rangeOfSeries({QA})", f"countSeries({QA})", f'aggregate({QA},"median")',
    f'aggregate({L},"avg_zero")', f'aggregate({QA},"last")',
    f"divideSeries({Q},statherd.web.queue.depth.mean)", f"percentileOfSeries({QA},50)",
    f"percentileOfSeries({L},75,true)", f"sumSeriesWithWildcards({QA},3)",
    f"averageSeriesWithWildcards({QA},1,3)", f"multiplySeriesWithWildcards({QA},3)",
    f'groupByNode({QA},1,"sumSeries")', f"groupByNode({QA},3)", f'groupByNodes({QA},"max",1,4)',
    f"asPercent({Q})", f"asPercent({Q},statherd.web.queue.depth.sum)", f"asPercent({Q},10)",
    f"asPercent({QA},None,1)", f"asPercent({QA},statherd.*.hosts.*.queue.depth.max,3)",
    f"asPercent({Q},statherd.*.queue.depth.sum,1)",  # api: a total without series (MISSING)
    # Transform
    f"scale({Q},2.5)", f"scaleToSeconds({E},60)", f"offset({Q},-3)",
    f"absolute(offset({Q},-8))", f"invert({L})", f"pow({Q},2)", f"squareRoot({L})",
    f"log({L})", f"log({L},2)", f"derivative({R})", f"nonNegativeDerivative({Q})",
    f"nonNegativeDerivative({Q},15)", f"perSecond({Q})", f"perSecond({Q},20)", f"integral({R})",
    f"delay({Q},2)", f"delay({Q},-3)", f"changed({Q})", f"keepLastValue({L})",
    f"keepLastValue({L},1)", f"transformNull({L})", f"transformNull({L},-1)",
    f"removeAboveValue({Q},8)", f"removeBelowValue({Q},8)", f'timeShift({Q},"5s")',
    f'timeShift({Q},"-10s")', f'summarize({Q},"10s")', f'summarize({L},"10s","max")',
    f'summarize({Q},"10s","avg",true)', f'hitcount({E},"10s")',
    # Calculate
    f"movingAverage({Q},5)", f'movingAverage({L},"10s")', f"movingSum({Q},3)",
    f"movingMin({L},4)", f'movingMax({Q},"5s")', f"movingMedian({Q},5)",
    f'movingWindow({Q},3,"sum")', f"nPercentile({L},90)",
    # Filter and sort
    f"highestCurrent({QA},2)", f"highestMax({QA},1)", f"highestAverage({QA},2)",
    f"lowestCurrent({QA},1)", f"lowestAverage({QA},2)", f'highest({QA},2,"sum")',
    f'lowest({QA},1,"max")', f"currentAbove({QA},5)", f"currentBelow({QA},5)",
    f"averageAbove({QA},7)", f"averageBelow({QA},7)", f"maximumAbove({QA},14)",
    f"maximumBelow({QA},14)", f"minimumAbove({QA},0)", f"minimumBelow({QA},1)",
    f'filterSeries({QA},"max",">",10)', f"limit({QA},2)", f"sortByName({QA})",
    f"sortByName({QA},true,true)", f"sortByMaxima({QA})", f"sortByMinima({QA})",
    f"sortByTotal({QA})", f'sortBy({QA},"max")', f'exclude({QA},"h1")', f'grep({QA},"api")',
    # Special and presentation
    "constantLine(100)", "constantLine(1.5)", 'threshold(42,"limit")', f'color({Q},"red")',
    f"lineWidth({Q},2)", f"dashed({Q})", f"alpha({Q},0.5)", f"secondYAxis({Q})",
    f'consolidateBy({L},"max")', f"drawAsInfinite({Q})", f"cumulative({Q})",
    f"removeAbovePercentile({Q},60)", f"removeBelowPercentile({L},40)", f"removeEmptySeries({L})",
    f"isNonNull({L})", f"offsetToZero({L})", f"add({Q},2)", f"exp(scale({Q},0.1))",
    f'aliasByTags({Q},3,"name")', f'aggregateWithWildcards({QA},"max",3)', 'identity("t")',
    # the | pipe, and Grafana's wrap of every panel query
    f"{Q}|sumSeries()|alias('s')", f"{Q} | scale(2) | aliasByNode(3)",
    f'aliasSub(sumSeries({Q}),"(^.*$)","\\1 A")', f'aliasSub(aliasByNode({QA},1,3),"(^.*$)","\\1 B")',
]

# Tagged series (graphite.tags: true): the Prometheus endpoint's labels, in graphite-web's tag
# database because carbon registers every series it creates there.
JR = "statherd.jobs.jobs_total.rate"                 # 4 series: dc, dc2, queue, state
TAG_TARGETS = [
    f"seriesByTag('name={JR}')", f"seriesByTag('name={JR}','dc=east')",
    "seriesByTag(\"name=~statherd.jobs.hosts.h1.*rate\",\"state!=ok\")",
    "seriesByTag('name=~statherd.jobs.jobs_total.m1_rate','queue=~s.*')",
    "seriesByTag('name=~statherd.jobs.*','dc!=~e.*')", "seriesByTag('dc2=west-2')",
    "seriesByTag('name_=lab-sensor')", "seriesByTag('name=nosuch.thing')",
    f"groupByTags(seriesByTag('name={JR}'),'sum','dc')",
    "groupByTags(seriesByTag('name=~statherd.jobs.hosts.*.jobs_total.rate'),'average','name',"
    "'state')",
    f"seriesByTag('name={JR}')|groupByTags('sumSeries','dc','queue')",
    f"aliasByTags(seriesByTag('name={JR}'),'dc','state')",
    f"aliasByTags(seriesByTag('name={JR}'),'name',2)",
    f"sumSeries(seriesByTag('name={JR}'))", f"seriesByTag('name={JR}','state=ok')|sumSeries()",
    f"aliasSub(aliasByTags(seriesByTag('name={JR}'),'queue'),\"(^.*$)\",\"\\1 A\")",
    f"{JR};dc2=east-2;dc=east;queue=mail;state=ok",  # a tagged path as written
]

# (extra parameters, targets): consolidation, output forms.
VARIANTS = [
    ({"maxDataPoints": "7"}, [Q, L, f'consolidateBy({L},"max")', f"sumSeries({QA})"]),
    ({"maxDataPoints": "10"}, [f'consolidateBy({Q},"sum")', "constantLine(5)"]),
    ({"maxDataPoints": "1"}, [Q]),
    ({"noNullPoints": "1"}, [L]),
]


def post(url, params):
    body = urllib.parse.urlencode(params, doseq=True).encode()
    return harness.http_request(url, data=body, method="POST", timeout=60,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})


def same_number(a, b):
    if a is None or b is None:
        return a is None and b is None
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def differences(ours, theirs):
    """What differs between two /render answers (JSON lists), as readable lines."""
    out = []
    if [s["target"] for s in ours] != [s["target"] for s in theirs]:
        return [f"targets {[s['target'] for s in ours]} != graphite-web's "
                f"{[s['target'] for s in theirs]}"]
    for a, b in zip(ours, theirs):
        pa, pb = a["datapoints"], b["datapoints"]
        if [p[1] for p in pa] != [p[1] for p in pb]:
            out.append(f"{a['target']}: timestamps {[p[1] for p in pa][:4]}..({len(pa)}) != "
                       f"{[p[1] for p in pb][:4]}..({len(pb)})")
            continue
        for (va, ts), (vb, _) in zip(pa, pb):
            if not same_number(va, vb):
                out.append(f"{a['target']} at {ts}: {va} != graphite-web's {vb}")
                break
    return out


def tag_differences(ours, theirs):
    """What differs between the tags of two /render answers' series."""
    out = []
    for a, b in zip(ours, theirs):
        tb = {k: str(v) for k, v in b["tags"].items()}
        if a["tags"] != tb:
            out.append(f"{a['target']}: tags {a['tags']} != graphite-web's {tb}")
    return out


def without_ids(value):
    """graphite-web's tag answers with its database's row ids (statherd has none) left out."""
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k != "id"}
    return value


class _GraphiteWebAndStatherd:
    """The processes both test classes run: carbon, graphite-web, statherd, two agents."""
    RETENTION = "1s:2h"   # statherd's memory.retention and carbon's storage schema
    AGGREGATION = None    # carbon's storage-aggregation rules (the fixture's default: sum)

    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix="statherd-graphite-web-")
        cls.processes = []
        try:
            cls._start()
        except BaseException:
            cls._stop_all(keep=True)
            raise

    @classmethod
    def _start(cls):
        w = cls.workdir
        # graphite-web first: carbon registers each series it creates in its tag database.
        cls.carbon = carbon_fixture.CarbonCache(w, retentions=cls.RETENTION,
                                                aggregation=cls.AGGREGATION)
        cls.graphite_web = graphite_web_fixture.GraphiteWeb(
            w, cls.carbon.whisper_dir, carbonlink=f"127.0.0.1:{cls.carbon.query_port}").start()
        cls.processes.append(cls.graphite_web)
        cls.carbon.graphite_url = cls.graphite_web.url
        cls.carbon.start()
        cls.processes.append(cls.carbon)
        token = harness.write_token_file(w)
        with open(os.path.join(w, "server.yaml"), "w") as f:
            f.write(f"interval: 1s\nmemory:\n  retention: {cls.RETENTION}\n"
                    "graphite:\n  tags: true\n")
        cls.server = harness.StatherdServer(w, token, graphite=cls.carbon.address,
                                            extra_args=["--config", os.path.join(w, "server.yaml")])
        cls.server.start()
        cls.processes.append(cls.server)
        endpoint = harness.ManagedProcess(
            "varying-scales", [harness.PYTHON, os.path.join(HERE, "varying_scales.py")], w)
        cls.processes.append(endpoint)
        harness.wait_for(lambda: "ready" in endpoint.read_stdout(), 30, what="Scales endpoint")
        port = endpoint.read_stdout().split()[1]
        cls.agents = []
        for host in ("h1", "h2"):
            agent = harness.StatherdAgent(
                w, cls.server.url, token, [], host=host,
                spool_dir=os.path.join(w, f"spool-{host}"),
                extra_args=["--scales-url", f"web=http://127.0.0.1:{port}/web-{host}",
                            "--scales-url", f"api=http://127.0.0.1:{port}/api-{host}",
                            "--prometheus-url", f"jobs=http://127.0.0.1:{port}/prom-{host}",
                            "--scales-counter-pattern", "errors"]).start()
            cls.agents.append(agent)
            cls.processes.append(agent)

        def points(target):
            body = cls.server.render(target, since="-2min")
            return [p for s in body for p in s["datapoints"] if p[0] is not None]

        # ~45 s of points on every host, then no more data.
        harness.wait_for(lambda: len(points("statherd.api.hosts.h2.queue.depth.mean")) >= 45, 120,
                         interval=1, what="45 s of points")
        for agent in cls.agents:
            agent.stop()
        # The agents' last batches reach the store a few intervals after they exit: wait until
        # the newest point stays put for 3 s.
        last = {"ts": None, "since": time.time()}

        def settled():
            ts = max(p[1] for p in points(QA))
            if ts != last["ts"]:
                last.update(ts=ts, since=time.time())
            return time.time() - last["since"] >= 3
        harness.wait_for(settled, 30, interval=0.5, what="the agents' last points")
        newest = last["ts"]
        cls.until = newest - 2
        cls.now = cls.until
        cls.start_ts = cls.until - 36
        # Carbon has written the window once its Whisper files give statherd's points, and
        # registered every series in graphite-web's tag database.
        def carbon_caught_up():  # every point, the last ones after `until` too
            params = {"target": [QA, R, E, L, f"seriesByTag('name={JR}')"],
                      "from": str(cls.start_ts - 20), "until": str(int(time.time())),
                      "format": "json"}
            ours = cls.ask(cls.server.url, params)
            if differences(ours, cls.ask(cls.graphite_web.url, params)):
                return False
            # ... written to the files, not only in carbon's cache (graphite-web merges cached
            # points into a coarser tier's step as they are, where Whisper aggregates them)
            for series in ours[:4]:  # QA
                newest_ts = max(p[1] for p in series["datapoints"] if p[0] is not None)
                on_disk = [t for t, _ in cls.carbon.fetch(series["target"], since_seconds=120)]
                if not on_disk or max(on_disk) < newest_ts:
                    return False
            every = "/tags/findSeries?expr=name%3D~s"
            return (harness.http_get_json(cls.server.url + every) ==
                    harness.http_get_json(cls.graphite_web.url + every))
        harness.wait_for(carbon_caught_up, 60, interval=0.5, what="carbon's Whisper files")

    @classmethod
    def _stop_all(cls, keep=False):
        for p in reversed(cls.processes):
            try:
                p.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                print(f"stopping: {exc}", file=sys.stderr)
        if keep:
            print(f"kept {cls.workdir} for its logs", file=sys.stderr)
        else:
            shutil.rmtree(cls.workdir, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls._stop_all()

    @staticmethod
    def ask(base, params, method="POST"):
        if method == "POST":
            status, body = post(base + "/render", params)
        else:
            status, body = harness.http_request(
                base + "/render?" + urllib.parse.urlencode(params, doseq=True), timeout=60)
        if status != 200:
            raise AssertionError(f"{base}/render {params}: HTTP {status}: {body[:300]!r}")
        return json.loads(body)

    def window(self, **extra):
        params = {"from": str(self.start_ts), "until": str(self.until), "format": "json"}
        params.update(extra)
        return params

    def compare(self, params, method="POST"):
        try:
            ours = self.ask(self.server.url, params, method)
            theirs = self.ask(self.graphite_web.url, params, method)
        except AssertionError as e:
            return [str(e)], None
        return differences(ours, theirs), ours

    def get_both(self, path):
        answers = []
        for base in (self.server.url, self.graphite_web.url):
            status, body = harness.http_request(base + path, timeout=60)
            answers.append((status, body))
        return answers


class GraphiteWebParityTest(_GraphiteWebAndStatherd, unittest.TestCase):
    def test_every_function_as_grafana_posts_it(self):
        failed, empty = [], []
        for target in TARGETS:
            diffs, ours = self.compare(self.window(target=target))
            if diffs:
                failed.append(f"{target}: " + "; ".join(diffs[:3]))
            elif not any(p[0] is not None for s in ours for p in s["datapoints"]):
                empty.append(target)
        self.assertEqual(failed, [], "\n".join(failed))
        # Identical empty answers would prove nothing: only these may hold no value (each
        # filter's opposite keeps the series these drop: every queue cycles through 0..16).
        filters = [t for t in TARGETS if t.split("(")[0] in (
            "currentAbove", "currentBelow", "averageAbove", "averageBelow", "maximumAbove",
            "maximumBelow", "minimumAbove", "minimumBelow", "filterSeries")]
        allowed = {"statherd.nosuch.*", *filters}
        self.assertLessEqual(set(empty), allowed)
        self.assertGreaterEqual(len(TARGETS), 100)

    def test_tagged_series_as_graphite_web_finds_them(self):
        failed = []
        for target in TAG_TARGETS:
            diffs, ours = self.compare(self.window(target=target))
            if not diffs:
                theirs = self.ask(self.graphite_web.url, self.window(target=target))
                diffs = tag_differences(ours, theirs)
            if diffs:
                failed.append(f"{target}: " + "; ".join(diffs[:3]))
            elif "nosuch" not in target and not any(
                    p[0] is not None for s in ours for p in s["datapoints"]):
                failed.append(f"{target}: no value in either answer")
        self.assertEqual(failed, [], "\n".join(failed))

    def test_tag_endpoints_as_graphite_web(self):
        q = urllib.parse.quote
        failed = []
        requests = [
            "/tags", "/tags/?filter=d", "/tags?limit=2", "/tags/dc", "/tags/name_?filter=l",
            "/tags/state?limit=1", "/tags/nosuch", f"/tags/name?filter={q('statherd.jobs')}",
            "/tags/findSeries?expr=dc%3Deast",
            f"/tags/findSeries?expr={q('name=~statherd.jobs')}&expr={q('state!=ok')}",
            f"/tags/findSeries?expr[]={q('queue=~s')}", "/tags/findSeries",
            f"/tags/findSeries?expr={q('dc!=east')}",
            "/tags/autoComplete/tags", "/tags/autoComplete/tags?tagPrefix=d",
            f"/tags/autoComplete/tags?expr={q('name=' + JR)}",
            f"/tags/autoComplete/tags?expr={q('dc=west')}&tagPrefix=s&limit=1",
            "/tags/autoComplete/values?tag=dc",
            f"/tags/autoComplete/values?tag=state&expr={q('dc=west')}",
            f"/tags/autoComplete/values?tag=name&valuePrefix={q('statherd.jobs.jobs')}&limit=3",
            "/tags/autoComplete/values", "/events/get_data?from=-1h&until=now",
            "/events/get_data?from=-1d&jsonp=cb",
        ]
        for path in requests:
            (s1, b1), (s2, b2) = self.get_both(path)
            if s1 != s2:
                failed.append(f"{path}: HTTP {s1} vs graphite-web's {s2}: {b1[:200]!r} "
                              f"{b2[:200]!r}")
                continue
            if s1 != 200:
                continue
            unwrap = (lambda b: json.loads(b[3:-1])) if "jsonp=cb" in path else json.loads
            a, b = unwrap(b1), without_ids(unwrap(b2))
            if a != b:
                failed.append(f"{path}: {b1[:300]!r} != graphite-web's {b2[:300]!r}")
        # a form POST, as Grafana's tag editor sends it
        body = {"expr": ["name=" + JR, "dc=east"]}
        answers = [post(base + "/tags/findSeries", body) for base in
                   (self.server.url, self.graphite_web.url)]
        if json.loads(answers[0][1]) != json.loads(answers[1][1]) or answers[0][0] != 200:
            failed.append(f"POST /tags/findSeries: {answers}")
        self.assertEqual(failed, [], "\n".join(failed))
        self.assertGreaterEqual(len(harness.http_get_json(self.server.url + "/tags")), 6)

    def test_max_data_points_no_null_points_and_get(self):
        failed = []
        for extra, targets in VARIANTS:
            for target in targets:
                for method in ("POST", "GET"):
                    diffs, _ = self.compare(self.window(target=target, **extra), method)
                    if diffs:
                        failed.append(f"{target} {extra} {method}: " + "; ".join(diffs[:3]))
        self.assertEqual(failed, [], "\n".join(failed))

    def test_times_relative_to_now_swapped_and_clamped(self):
        failed = []
        now = str(self.now)
        hhmm = time.strftime("%H:%M_%Y%m%d", time.gmtime(self.start_ts - 60))
        kolkata = datetime.datetime.fromtimestamp(self.start_ts - 60,
                                                  zoneinfo.ZoneInfo("Asia/Kolkata"))
        hhmm_kolkata = kolkata.strftime("%H:%M_%Y%m%d")
        for extra in ({"from": "-20s", "until": "now", "now": now},
                      {"from": "now-30s", "until": "now-5s", "now": now},
                      {"from": hhmm, "until": f"{hhmm}+1min"},
                      {"from": "today", "until": str(self.until)},
                      {"from": "-1h", "until": "now", "now": now},
                      {"from": "-30s", "until": "-10s", "now": now},
                      {"from": str(self.until), "until": str(self.start_ts)},  # swapped
                      {"from": "-1min", "now": now},
                      {"from": str(self.start_ts), "until": str(int(time.time()) + 600)},
                      # tz: absolute times on that zone's clock; an unknown zone is UTC
                      {"from": hhmm_kolkata, "until": f"{hhmm_kolkata}+1min",
                       "tz": "Asia/Kolkata"},
                      {"from": "midnight", "until": "now", "now": now,
                       "tz": "America/New_York"},
                      {"from": hhmm, "until": f"{hhmm}+1min", "tz": "Nowhere/City"}):
            params = {"target": [Q, f"sumSeries({L})"], "format": "json", **extra}
            diffs, _ = self.compare(params)
            for _ in range(3):  # a future until is clamped to each server's clock: the two
                if not diffs:   # requests may fall on both sides of a second
                    break
                diffs, _ = self.compare(params)
            if diffs:
                failed.append(f"{extra}: " + "; ".join(diffs[:3]))
        self.assertEqual(failed, [], "\n".join(failed))

    def test_csv_times_in_a_zone(self):
        params = urllib.parse.urlencode({"target": Q, "from": str(self.start_ts),
                                         "until": str(self.until), "format": "csv",
                                         "tz": "Europe/Paris"})
        (s1, b1), (s2, b2) = self.get_both("/render?" + params)
        self.assertEqual((s1, s2), (200, 200))
        self.assertEqual(b1.decode().splitlines(), b2.decode().splitlines())
        self.assertGreater(len(b1.decode().splitlines()), 30)

    def test_the_answers_are_not_empty(self):
        # The comparison means something only if the series hold values that change.
        ours = self.ask(self.server.url, self.window(target=QA))
        self.assertEqual(len(ours), 4)
        values = [p[0] for s in ours for p in s["datapoints"] if p[0] is not None]
        self.assertGreater(len(set(values)), 5)
        gaps = self.ask(self.server.url, self.window(target=L))
        self.assertTrue(any(p[0] is None for s in gaps for p in s["datapoints"]))

    def test_find_expand_index_and_version_as_graphite_web(self):
        q = urllib.parse.quote
        failed = []
        requests = []
        for query in ("statherd.*", "statherd.web.*", "statherd.web.hosts.*", "statherd.*.hosts",
                      "statherd.{web,api}.q*", "statherd.web.hosts.h1.queue.depth.*",
                      "statherd.web.hosts.h[12]", "statherd.nosuch.*"):
            requests.append(f"/metrics/find?query={q(query)}")
            requests.append(f"/metrics/find/?query={q(query)}&wildcards=1")
            requests.append(f"/metrics/find?query={q(query)}&format=completer")
            requests.append(f"/metrics/find?query={q(query)}&format=nodelist&position=2")
            requests.append(f"/metrics/find?query={q(query)}&leavesOnly=1&jsonp=cb")
        requests += [
            "/metrics/find?query=statherd.web.hos&format=completer",
            "/metrics/find?query=statherd..queue&format=completer&wildcards=1",
            f"/metrics/expand?query={q(QA)}",
            f"/metrics/expand/?query={q('statherd.web.*')}&query={q(QA)}&groupByExpr=1",
            f"/metrics/expand?query={q('statherd.*.hosts.*')}&leavesOnly=1",
            "/metrics/index.json",
        ]
        for path in requests:
            (s1, b1), (s2, b2) = self.get_both(path)
            if s2 == 500 and s1 == 200:  # graphite-web's nodelist raises IndexError where a
                continue                 # path is shorter than position: statherd skips it
            if (s1, b1 if s1 != 200 else None) != (s2, b2 if s2 != 200 else None):
                failed.append(f"{path}: HTTP {s1} vs graphite-web's {s2}")
                continue
            if s1 != 200:
                continue
            unwrap = (lambda b: json.loads(b[3:-1])) if "jsonp=cb" in path else json.loads
            a, b = unwrap(b1), unwrap(b2)
            if path == "/metrics/index.json":  # graphite-web lists carbon's files of tagged
                b = [p for p in b if not p.startswith("_tagged.")]  # series by their hash
            if "completer" in path:  # nodes of one name come in graphite-web's directory
                a, b = (sorted(x["metrics"], key=json.dumps) for x in (a, b))  # listing order
            if a != b:
                failed.append(f"{path}: {b1[:300]!r} != graphite-web's {b2[:300]!r}")
        (s1, b1), (s2, b2) = self.get_both("/version")
        if (s1, b1.strip()) != (s2, b2.strip()):
            failed.append(f"/version: {s1} {b1[:40]!r} != {s2} {b2[:40]!r}")
        self.assertEqual(failed, [], "\n".join(failed))

    def test_functions_lists_what_render_evaluates(self):
        # graphite-web's /functions raises on Python 3.11 (as the issue says), so its documented
        # shape is checked: {name: {name, function, description, module, group, params}}.
        funcs = harness.http_get_json(self.server.url + "/functions")
        self.assertGreaterEqual(len(funcs), 90)
        for name, info in funcs.items():
            self.assertEqual(info["name"], name)
            self.assertTrue(info["function"].startswith(name + "("), info)
            for key in ("description", "module", "group"):
                self.assertIsInstance(info[key], str, (name, key))
            for p in info["params"]:
                self.assertEqual(set(p) - {"multiple"}, {"name", "type", "required"}, (name, p))
        grouped = harness.http_get_json(self.server.url + "/functions?grouped=1")
        self.assertEqual(sum(len(v) for v in grouped.values()), len(funcs))
        self.assertEqual(harness.http_get_json(self.server.url + "/functions/sumSeries")["group"],
                         "Combine")
        status, _ = harness.http_request(self.server.url + "/functions/nosuch", timeout=10)
        self.assertEqual(status, 404)
        # Every listed function is one /render knows: none answers "unknown function".
        unknown = []
        for name in funcs:
            status, body = post(self.server.url + "/render", self.window(target=f"{name}()"))
            if status == 400 and b"unknown function" in body:
                unknown.append(name)
        self.assertEqual(unknown, [])

    def test_unknown_function_is_400_naming_it(self):
        status, body = post(self.server.url + "/render", self.window(target=f"frobnicate({Q})"))
        self.assertEqual(status, 400)
        self.assertIn("frobnicate", json.loads(body)["error"])


class GraphiteWebTiersTest(_GraphiteWebAndStatherd, unittest.TestCase):
    """Two tiers: 1 s points for 3 minutes, then 5 s points, in statherd's memory store and in
    carbon's Whisper archives, each coarse point made as statherd makes it (count summed, min
    and max kept, the rest averaged). A range that starts within 3 minutes of `now` reads the
    1 s tier, an older one the 5 s tier, in both servers."""
    RETENTION = "1s:3m,5s:10m"
    AGGREGATION = [(r"\.count$", "sum"), (r"\.min$", "min"), (r"\.max$", "max"),
                   (".*", "average")]
    TARGETS = [Q, QA, L, R, "statherd.web.hosts.*.queue.depth.max",
               "statherd.api.hosts.*.latency.ms.min", f"sumSeries({QA})",
               f"movingAverage({Q},3)", f'summarize({L},"20s","max")', f"perSecond({R})",
               f"aliasByNode(nonNegativeDerivative({R}),1)"]

    def test_each_tier_as_graphite_web(self):
        now = self.until + 5  # the request's now: both servers pick the tier from it
        failed = []
        steps = set()
        for start, expected_step in ((self.start_ts, 1), (self.until - 200, 5)):
            for target in self.TARGETS:
                params = {"target": target, "from": str(start), "until": str(self.until),
                          "now": str(now), "format": "json"}
                diffs, ours = self.compare(params)
                if diffs:
                    failed.append(f"{target} from {start}: " + "; ".join(diffs[:3]))
                    continue
                points = [p for s in ours for p in s["datapoints"]]
                if not any(p[0] is not None for p in points):
                    failed.append(f"{target} from {start}: no value")
                if len(points) > 1 and target == Q:
                    steps.add((expected_step, points[1][1] - points[0][1]))
        self.assertEqual(failed, [], "\n".join(failed))
        self.assertEqual(steps, {(1, 1), (5, 5)})  # both tiers were read


if __name__ == "__main__":
    unittest.main()
