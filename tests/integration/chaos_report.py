"""What the chaos test measured: Carbon's app-level totals against the writers' exact totals,
per writer (the server runs with --level-process, so each pid has its own series), the faults
injected, and the log lines that explain a loss or a double count.
"""

import os
import re
import time

from pipeline import HOST

# (component, label, regex) — the log lines that explain where increments go.
EVIDENCE = (
    ("agent", "batch rejected and deleted (4xx)", r"server rejected batch seq"),
    ("agent", "spool dropped oldest batch", r"dropped the oldest batch"),
    ("agent", "batch not spooled (lost)", r"cannot spool batch"),
    ("agent", "batch held in memory (spool full)", r"held in memory and retried"),
    ("agent", "state not persisted (batch lost)", r"cannot persist the agent state"),
    ("agent", "spooled batch unreadable (dropped)", r"dropping that batch"),
    ("agent", "ENOSPC anywhere", r"No space left on device"),
    ("agent", "ship failed, kept (retry)", r"could not ship batch seq"),
    ("agent", "replaying spool at start", r"unsent batches; replaying"),
    ("server", "WAL torn record (truncated)", r"torn record"),
    ("server", "WAL record undecodable (skipped)", r"skipping undecodable WAL record"),
    ("server", "recovered from snapshot/WAL", r"recovered state from"),
    ("server", "error lines", r"\berror\b"),
)


def read_log(workdir, name):
    try:
        with open(os.path.join(workdir, f"{name}.stderr"), errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return []


def evidence(workdir):
    """[(component, label, count, first matching line)]."""
    logs = {"agent": read_log(workdir, "statherd-agent"), "server": read_log(workdir, "statherd-server")}
    rows = []
    for component, label, pattern in EVIDENCE:
        rx = re.compile(pattern, re.IGNORECASE)
        hits = [line for line in logs[component] if rx.search(line)]
        rows.append((component, label, len(hits), hits[0][:220] if hits else ""))
    return rows


def app_totals(carbon, expected):
    """[(app, counter, written, in carbon)] for every counter the writers wrote."""
    rows = []
    for app in sorted(expected):
        for name in sorted(expected[app]):
            rows.append((app, name, expected[app][name],
                         carbon.sum(f"statherd.{app}.{name}.count")))
    return rows


def writer_discrepancies(carbon, workers):
    """[(worker, {counter: (written, in carbon)}, {counter: [(ts, value)]})] for every worker
    whose own (process-level) series do not add up to what it wrote."""
    pids = {}
    for w in workers:
        pids.setdefault(w.pid, []).append(w)
    out = []
    for w in workers:
        if len(pids[w.pid]) > 1:
            continue  # a reused pid shares its series; the app totals still cover it
        sums, points = {}, {}
        for name, total in sorted((w.totals or {}).items()):
            metric = f"statherd.{w.app}.hosts.{HOST}.pids.{w.pid}.{name}.count"
            points[name] = [(ts, v) for ts, v in carbon.fetch(metric) if v]
            sums[name] = (total, sum(v for _, v in points[name]))
        if any(abs(got - total) > 1e-6 for total, got in sums.values()):
            out.append((w, sums, points))
    return out


def outages(timeline, target):
    """[(down, up, last scan)] unix times of each outage of target ("server" or "agent"); last
    scan: when the stopped agent last read the stat files (at SIGTERM it reads them once more;
    its ticks are on whole wall-clock seconds)."""
    spans, down, last_scan = [], None, None
    for t, text in timeline:
        if text.startswith(f"{target} SIG") or text.startswith(f"{target} stopped"):
            if down is None:
                down = t
                last_scan = t if ("SIGKILL" not in text) else float(int(t))
        elif text.startswith(f"{target} up") and down is not None:
            spans.append((down, t, last_scan))
            down = None
    return spans


def writer_context(chaos, w):
    """What happened to the pipeline while w lived (the hints for its diagnosis)."""
    end = w.ended or time.time()
    notes = []
    for target in ("agent", "server"):
        for down, up, _ in outages(chaos.timeline, target):
            if down <= end + 1 and up >= w.started - 1:
                where = ("started" if down <= w.started <= up else "") + \
                        (" died" if down <= end <= up else "")
                notes.append(f"{target} down {down - chaos.t0:.1f}..{up - chaos.t0:.1f}"
                             + (f" (writer {where.strip()} meanwhile)" if where else ""))
    for t, text in chaos.timeline:
        if text.startswith("spool filesystem") and w.started - 1 <= t <= end + 1:
            notes.append(f"{text} at {t - chaos.t0:.1f}")
    return notes


CAUSES = {
    "spool": "lived while the spool filesystem was full: batches not written (ENOSPC), so its "
             "fresh first sighting or its dead file's one final read was lost",
    "dead_v1": "mmstats v1 file of a pid that died before a restarted agent's first scan: read "
               "with start_time_ms 0 (no /proc), a new source, baselined",
    "start": "first seen by a restarted agent: its /proc start time (btime in whole seconds) "
             "is not after the previous agent's last scan, so not fresh, baselined",
}


def likely_causes(chaos, w):
    """Keys of CAUSES whose conditions hold for w (heuristic, from the timeline): the first
    scan of a restarted agent comes up to ~1.5 s after it is up. An agent blocked in a slow
    send does not scan at all, which this cannot see: "unexplained" then often means one of
    these causes with a wider window (read the writer's points and the proxy log)."""
    end = w.ended or time.time()
    causes = []
    full = [t for t, text in chaos.timeline if text.startswith("spool filesystem")]
    # A dead file's final read is the scan after its death (within ~1.5 s).
    if full and w.started <= (full[1] if len(full) > 1 else end) and end + 1.5 >= full[0]:
        causes.append("spool")
    for down, up, last_scan in outages(chaos.timeline, "agent"):
        if w.kind == "v1" and down <= end <= up + 1.5 and "dead_v1" not in causes:
            causes.append("dead_v1")
        # /proc start times are up to 1 s early: unseen by the old agent, yet "started before
        # its last scan" for the new one.
        if last_scan < w.started <= min(last_scan + 1.0, up + 1.0) and "start" not in causes:
            causes.append("start")
    return causes or ["unexplained"]


def cause_table(chaos, discrepancies):
    """Lines: per likely cause, the writers and the increments of their first counter lost."""
    tally = {}
    for w, sums, _ in discrepancies:
        total, got = next(iter(sums.values()))
        key = "+".join(likely_causes(chaos, w))
        n, lost = tally.get((w.kind, key), (0, 0))
        tally[(w.kind, key)] = (n + 1, lost + got - total)
    lines = ["", "---- likely causes (first counter of each writer; heuristic) ----"]
    for (kind, key), (n, lost) in sorted(tally.items()):
        lines.append(f"{kind} {key:<22} {n:>4} writers {lost:>+10g}")
    for key, text in CAUSES.items():
        lines.append(f"   {key}: {text}")
    return lines


def format_summary(chaos, rows, stable, drain):
    cfg = chaos.cfg
    written = sum(r[2] for r in rows)
    in_carbon = sum(r[3] for r in rows)
    proxy = chaos.proxy.counts
    kinds = chaos.writers.count_by_kind()

    def sig(target, kind):
        return chaos.signals.get((target, kind), 0)

    lines = [
        "",
        "=================== statherd chaos test summary ===================",
        f"seed                         {cfg.seed}   (STATHERD_CHAOS_SEED)",
        f"chaos duration               {chaos.chaos_seconds:.1f} s (asked {cfg.seconds:g} s)",
        f"server SIGKILL / SIGTERM     {sig('server', 'KILL')} / {sig('server', 'TERM')}",
        f"agent  SIGKILL / SIGTERM     {sig('agent', 'KILL')} / {sig('agent', 'TERM')}",
        f"SIGTERM exit codes           {sorted(set((t, c) for t, c in chaos.term_exits))}; "
        f"timeouts {chaos.term_timeouts}",
        "proxy faults                 " + ", ".join(
            f"{k} {proxy[k]}" for k in ("pass", "http_5xx", "reset_request", "reset_response",
                                        "delay_request", "delay_response", "upstream_down",
                                        "client_error")),
        f"spool-full episodes          {chaos.fs.episodes} (top-ups {chaos.fs.top_ups}, "
        f"tmpfs {cfg.spool_fs_bytes} bytes)",
        f"writers started (v1 / v2)    {kinds['v1']} / {kinds['v2']}",
        f"drain                        spool empty {drain.get('drained_after_s', 0):.1f} s after the writers stopped",
        "",
        f"{'app':<10} {'counter':<16} {'written':>12} {'in carbon':>12} {'difference':>12}",
    ]
    for app, name, total, got in rows:
        lines.append(f"{app:<10} {name:<16} {total:>12g} {got:>12g} {got - total:>+12g}")
    lines.append(f"{'TOTAL':<27} {written:>12g} {in_carbon:>12g} {in_carbon - written:>+12g}")
    if not stable:
        lines.append("(Carbon's sums still changed after three more intervals: late double counts)")
    return "\n".join(lines)


def identities(sources, w):
    """The server's source identities for w's stat file: a dead mmstats v1 file read by a
    restarted agent shows up a second time with start_time_ms 0 (a new, baselined source)."""
    path_part = f"-{w.pid}"
    found = [s for s in sources if s.get("pid") == w.pid and path_part in s.get("path", "")]
    if not found:
        return "server knows no source for it"
    parts = []
    for s in found:
        start = s.get("start_time_ms", 0)
        parts.append("start_time_ms 0" if not start else
                     f"start_time_ms = true start {start / 1000 - w.started:+.2f} s")
    return "server identities: " + "; ".join(parts)


def format_diagnosis(chaos, discrepancies, evidence_rows, sources=()):
    t0 = chaos.t0
    lines = ["", "---- writers whose own series disagree (process level; times from chaos start) ----"]
    if not discrepancies:
        lines.append("none")
    for w, sums, points in discrepancies:
        end = (w.ended or time.time()) - t0
        diffs = ", ".join(f"{name} {got:g}/{total:g} ({got - total:+g})"
                          for name, (total, got) in sums.items())
        lines.append(f"{w.kind} pid {w.pid} lived {w.started - t0:.1f}..{end:.1f} s: {diffs}")
        first = next(iter(points.values()))
        lines.append("      points " + " ".join(f"{ts - t0:.0f}:{v:g}" for ts, v in first))
        lines.append(f"      likely: {'+'.join(likely_causes(chaos, w))}; {identities(sources, w)}")
        for note in writer_context(chaos, w):
            lines.append(f"      {note}")
    lines += cause_table(chaos, discrepancies)
    lines.append("")
    lines.append("---- log evidence ----")
    for component, label, count, first in evidence_rows:
        lines.append(f"{component:<7} {label:<36} {count:>6}  {first}")
    return "\n".join(lines)


def write_files(chaos, workdir):
    """The timeline and the proxy's request log, for a reader of a failed run."""
    with open(os.path.join(workdir, "chaos-timeline.txt"), "w") as f:
        for t, text in chaos.timeline:
            f.write(f"{t:.3f} {t - chaos.t0:8.3f} {text}\n")
    with open(os.path.join(workdir, "chaos-proxy.log"), "w") as f:
        for t, seq, what, status in list(chaos.proxy.requests):
            f.write(f"{t:.3f} {t - chaos.t0:8.3f} seq {seq} {what} {status or ''}\n")
