"""make demo: the live table, read from statherd-server's JSON API (GET /render), one interval at
a time. Fleet and host figures are the server's rollups: latency percentiles merged from every
worker's sketch, not averaged; each worker's own p99 comes from the process level
(--level-process)."""
import json
import urllib.parse
import urllib.request

APP = "shop"
TARGETS = [
    "statherd.shop.{requests,errors}.rate",
    "statherd.shop.request_latency.{p50,p99}",
    "statherd.shop.queue_depth.sum",
    "statherd.shop.hosts.*.{requests,errors}.rate",
    "statherd.shop.hosts.*.request_latency.{p50,p99}",
    "statherd.shop.hosts.*.queue_depth.sum",
    "statherd.shop.hosts.*.pids.*.{requests,errors}.rate",
    "statherd.shop.hosts.*.pids.*.request_latency.{p50,p99}",
    "statherd.shop.hosts.*.pids.*.queue_depth.last",
    "statherd.billing.charges.count.rate",
    "statherd.billing.charge_latency.p99_max",
    "statherd.cron.jobs.count.rate",
]
# (metric, stat) -> column; queue: the sum over processes, a process's own last value.
COLUMNS = {("requests", "rate"): 0, ("errors", "rate"): 1, ("request_latency", "p50"): 2,
           ("request_latency", "p99"): 3, ("queue_depth", "sum"): 4, ("queue_depth", "last"): 4}
HEADER = "%-29s %11s %9s %8s %8s %6s" % ("", "requests/s", "errors/s", "p50 ms", "p99 ms",
                                           "queue")


def render_url(base, targets, since, until=None):
    query = ([("target", t) for t in targets] + [("from", since)] +
             ([("until", until)] if until else []) + [("format", "json")])
    return base + "/render?" + urllib.parse.urlencode(query)


def fetch(base, targets=TARGETS, since="-20s"):
    with urllib.request.urlopen(render_url(base, targets, since), timeout=5) as r:
        return json.load(r)


class Snapshot:
    """Every series' value in the newest interval the fleet's request rate has."""

    def __init__(self, series):
        fleet = [s for s in series if s["target"] == "statherd.shop.requests.rate"]
        stamps = [ts for s in fleet for v, ts in s["datapoints"] if v is not None]
        self.ts = max(stamps) if stamps else None
        self.values = {}
        for s in series:
            for v, ts in s["datapoints"]:
                if ts == self.ts and v is not None:
                    self.values[s["target"]] = v

    def rows(self):
        """{scope: [5 values or None]}, scope = () fleet, (host,) or (host, pid)."""
        rows = {}
        for path, v in self.values.items():
            parts = path.split(".")
            if parts[1] != APP or (parts[-2], parts[-1]) not in COLUMNS:
                continue
            scope = ()
            if parts[2] == "hosts":
                scope = (parts[3],) if parts[4] != "pids" else (parts[3], parts[5])
            rows.setdefault(scope, [None] * 5)[COLUMNS[(parts[-2], parts[-1])]] = v
        return rows

    def get(self, path):
        return self.values.get(path)


def cell(v, scale=1.0, fmt="%.1f"):
    return "-" if v is None else fmt % (v * scale)


def format_row(label, vals):
    return "%-29s %11s %9s %8s %8s %6s" % (label, cell(vals[0]), cell(vals[1]),
                                           cell(vals[2], 1000), cell(vals[3], 1000),
                                           cell(vals[4], fmt="%.0f"))


def format_table(snap, notes):
    """The table's lines. notes: {pid: "slow"} labels for workers."""
    rows = snap.rows()
    lines = [HEADER, format_row("fleet (merged)", rows.get((), [None] * 5))]
    worker_p99s = []
    for host in sorted(k[0] for k in rows if len(k) == 1):
        lines.append(format_row("  host " + host, rows[(host,)]))
        for key in sorted(k for k in rows if len(k) == 2 and k[0] == host):
            label = "    worker %s%s" % (key[1], " (%s)" % notes[key[1]] if key[1] in notes
                                         else "")
            lines.append(format_row(label, rows[key]))
            if rows[key][3] is not None:
                worker_p99s.append(rows[key][3])
    fleet_p99 = rows.get((), [None] * 5)[3]
    if worker_p99s and fleet_p99 is not None:
        lines.append("fleet p99 %.0f ms is merged from the workers' histograms, not averaged "
                     "(mean of their p99s: %.0f ms)" %
                     (fleet_p99 * 1000, 1000 * sum(worker_p99s) / len(worker_p99s)))
    lines.append("billing (Scales /status): %s charges/s, p99 as the process reports it %s ms"
                 % (cell(snap.get("statherd.billing.charges.count.rate")),
                    cell(snap.get("statherd.billing.charge_latency.p99_max"), 1000, "%.0f")))
    lines.append("cron (an original mmstats v1 file): %s jobs/s" %
                 cell(snap.get("statherd.cron.jobs.count.rate")))
    return lines


def counted_total(base, path, since):
    """The sum of an interval `count` series over the run (None if the server has none)."""
    series = fetch(base, [path], since)
    values = [v for s in series for v, _ in s["datapoints"] if v is not None]
    return sum(values) if values else None
