#!/usr/bin/python3
"""The statherd demo (make demo): a small simulated service watched live, on loopback, in a temp
dir, with embedded defaults and no external service.

  app "shop": 4 worker processes (statherd v2 writer: requests, errors, queue_depth,
              request_latency) on two simulated hosts, web-1 and web-2, one agent each;
  app "cron": one process writing an original mmstats v1 file (read by web-1's agent);
  app "billing": one process serving a Scales-style /status/ tree (read by web-2's agent);
  statherd-server rolls them up every 2 s (app, host and process level).

A table refreshes for --seconds (30): requests/s, errors/s, fleet p50/p99 merged across workers
beside each worker's own p99, queue depth. Then (or at Ctrl-C) a summary: what the workers
counted against what statherd counted, the web page's URL and one curl of the JSON API.

The daemons and writers run in their own sessions, so the terminal's Ctrl-C reaches only this
driver, which stops them by pid after the summary. A second Ctrl-C skips the waiting."""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_table  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"
WORKER = os.path.join(ROOT, "scripts", "demo_v2_writer.py")
LEGACY = os.path.join(ROOT, "scripts", "demo_legacy_writers.py")
# host, mean rate, phase of the load cycle, latency multiplier, incident window, note
WORKERS = [("web-1", 35, 0.0, 1.0, "", None), ("web-1", 30, 1.0, 1.0, "", None),
           ("web-2", 30, 2.0, 1.0, "12:20", "incident"), ("web-2", 25, 3.0, 2.5, "", "slow")]
LEGEND = "notes: slow = 2.5x the latency; incident = 15 % errors and a backlog at 12-20 s"


class Interrupts:
    """SIGINT sets a flag instead of raising: the driver finishes what it does, then stops."""

    def __init__(self):
        self.count = 0
        self.first = self.last = None
        signal.signal(signal.SIGINT, self.handle)
        signal.signal(signal.SIGTERM, self.handle)

    def handle(self, signum, frame):
        self.count += 1
        self.last = time.monotonic()
        self.first = self.first or self.last

    def again(self):
        """A second Ctrl-C, at least a second after the first (make passes one on too)."""
        return self.count > 1 and self.last - self.first > 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(pred, timeout, what, stop=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stop is not None and stop.count:
            raise KeyboardInterrupt
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("demo: timed out waiting for " + what)


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


class Demo:
    def __init__(self, args):
        self.args = args
        self.bindir = os.path.abspath(os.path.join(ROOT, args.build))
        self.tmp = tempfile.mkdtemp(prefix="statherd-demo-")
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.daemons, self.writers, self.workers = [], [], []
        self.notes = {}
        self.stop = Interrupts()
        self.started = self.started_wall = None

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def spawn(self, argv, log, env=None, stdout=None):
        """A child in its own session: the terminal's Ctrl-C does not reach it."""
        return subprocess.Popen(argv, stdout=stdout or subprocess.DEVNULL,
                                stderr=open(self.path(log), "wb"), env=env,
                                start_new_session=True)

    def start_daemons(self):
        token = self.path("token")
        fd = os.open(token, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, os.urandom(16).hex().encode())
        os.close(fd)
        self.daemons.append(self.spawn(
            [os.path.join(self.bindir, "statherd-server"), "--listen", "127.0.0.1:%d" % self.port,
             "--token-file", token, "--interval", self.args.interval, "--level-process",
             "--state-dir", self.path("server-state"), "--graphite", "-"],
            "server.log", stdout=open(self.path("graphite.txt"), "wb")))
        wait_until(lambda: port_open(self.port), 15, "statherd-server", self.stop)
        for host in ("web-1", "web-2"):
            os.makedirs(self.path(host), mode=0o700)
            argv = [os.path.join(self.bindir, "statherd-agent"), "--server", self.base,
                    "--token-file", token, "--interval", "1s", "--host", host,
                    "--spool-dir", self.path("spool-" + host),
                    "--v2-glob", self.path(host, "*.statherd")]
            if host == "web-1":
                argv += ["--mmstats-glob", self.path(host, "*.mmstats")]
            else:
                self.scales = self.start_writer([LEGACY, "scales"], "billing.log")
                argv += ["--scales-url", "billing=http://127.0.0.1:%s/status/" % self.scales]
            self.daemons.append(self.spawn(argv, "agent-%s.log" % host))
        wait_until(lambda: len(get_json(self.base + "/api/v1/sources")["agents"]) == 2, 15,
                   "both agents' first batches", self.stop)

    def start_writer(self, argv, log, env=None):
        """Starts a writer and waits for its "ready" line; returns what follows "ready"."""
        p = self.spawn([PY] + argv, log, env=env, stdout=subprocess.PIPE)
        self.writers.append(p)
        line = p.stdout.readline().decode().split()
        if not line or line[0] != "ready":
            raise SystemExit("demo: %s did not start; see %s" % (argv[0], self.path(log)))
        return line[1] if len(line) > 1 else None

    def start_writers(self):
        self.start_writer([LEGACY, "mmstats", self.path("web-1")], "cron.log")
        for i, (host, rate, phase, slow, incident, note) in enumerate(WORKERS):
            env = dict(os.environ, STATHERD_DIR=self.path(host), STATHERD_APP="shop")
            argv = [WORKER, "--rate", str(rate), "--phase", str(phase), "--slow", str(slow)]
            self.start_writer(argv + (["--incident", incident] if incident else []),
                              "worker-%d.log" % i, env=env)
            self.workers.append(self.writers[-1])
            if note:
                self.notes[str(self.writers[-1].pid)] = note

    def intro(self):
        print("statherd demo: server %s, agents on simulated hosts web-1 and web-2, 6 Python "
              "processes;\nworking directory %s (logs, Graphite lines in graphite.txt)\n"
              "web page while it runs: %s/   Ctrl-C: stop early, with the summary\n"
              % (self.base, self.tmp, self.base), flush=True)

    def live_table(self):
        tty = sys.stdout.isatty()
        shown, drawn, last_ts = 0, 0, None
        end = time.monotonic() + self.args.seconds
        while time.monotonic() < end and not self.stop.count:
            time.sleep(0.25)
            try:
                snap = demo_table.Snapshot(demo_table.fetch(self.base))
            except OSError as e:
                print("demo: could not query the server: %s" % e, flush=True)
                continue
            # The first interval the writers only partly filled is not shown.
            if snap.ts is None or snap.ts == last_ts or snap.ts < self.started_wall:
                continue
            last_ts, shown = snap.ts, shown + 1
            title = "interval %s, %d s of %d" % (
                time.strftime("%H:%M:%S", time.localtime(snap.ts)),
                time.monotonic() - self.started, self.args.seconds)
            lines = [title] + demo_table.format_table(snap, self.notes) + [LEGEND]
            if tty:  # redraw in place
                sys.stdout.write(("\x1b[%dF\x1b[J" % drawn if drawn else "") +
                                 "\n".join(lines) + "\n")
                drawn = len(lines)
            elif shown % 3 == 1:  # not a terminal: a block every ~6 s, no escape codes
                sys.stdout.write("\n".join(lines) + "\n\n")
            sys.stdout.flush()

    def stop_workers(self):
        totals = {"requests": 0, "errors": 0}
        for p in self.workers:
            p.send_signal(signal.SIGTERM)
        for p in self.workers:
            out, _ = p.communicate(timeout=10)
            try:
                for k, v in json.loads(out.decode().strip().splitlines()[-1]).items():
                    totals[k] += v
            except (ValueError, IndexError):  # a worker that died says nothing: see its log
                print("demo: worker %d reported no totals (exit %s)" % (p.pid, p.returncode))
        return totals

    def show_api(self):
        """One curl of the JSON API (what the table reads), while the workers still write."""
        # Up to 4 s ago: the newest interval is emitted once it closed and its reads arrived.
        url = demo_table.render_url(self.base, ["statherd.shop.hosts.*.requests.rate"], "-10s",
                                    "-4s")
        print("\nthe JSON API (Graphite's /render), each host's requests/s of the last "
              "intervals:\n$ curl -sS '%s'" % url)
        with urllib.request.urlopen(url, timeout=5) as r:
            print(r.read().decode().strip(), flush=True)

    def summary(self, totals):
        since = "-%ds" % (time.monotonic() - self.started + 30)

        def counted():
            return {k: demo_table.counted_total(self.base, "statherd.shop.%s.count" % k, since)
                    for k in totals}
        # The agents read the workers' last values within 1 s; the server emits that interval
        # when it closes (2 s): wait for the counts to settle (a second Ctrl-C skips this).
        deadline = time.monotonic() + 8
        seen = counted()
        while seen != totals and time.monotonic() < deadline and not self.stop.again():
            time.sleep(0.25)
            seen = counted()
        print("\nsummary after %d s (counters travel as cumulative values, so nothing is lost "
              "or counted twice):" % (time.monotonic() - self.started))
        for k in totals:
            print("  %-8s the workers counted %6d, statherd counted %6s%s" % (
                k, totals[k], "-" if seen[k] is None else "%d" % seen[k],
                "  (exact)" if seen[k] == totals[k] else "  (the last interval was still on "
                "its way)"))
        print("  web page: %s/ (while the demo runs; make demo DEMO_ARGS=--keep keeps the server "
              "up)\n  logs and Graphite lines: %s" % (self.base, self.tmp), flush=True)

    def shutdown(self):
        for p in self.writers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        # The agents first: on SIGTERM each reads once more and ships while the server runs.
        for p in self.daemons[1:] + self.daemons[:1]:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for p in self.writers:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()

    def run(self):
        try:
            self.start_daemons()
            self.started, self.started_wall = time.monotonic(), time.time()
            self.start_writers()
            self.intro()
            self.live_table()
            if self.stop.count:
                print("\ndemo: Ctrl-C, stopping", flush=True)
            self.show_api()
            self.summary(self.stop_workers())
            if self.args.keep and not self.stop.count:
                print("demo: --keep: the server stays up at %s/ until Ctrl-C" % self.base,
                      flush=True)
                while not self.stop.count:
                    time.sleep(0.2)
        except KeyboardInterrupt:
            print("\ndemo: interrupted while starting", flush=True)
        finally:
            self.shutdown()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("--build", default="build", help="the build dir holding the daemons")
    ap.add_argument("--seconds", type=float, default=30, help="how long the table runs")
    ap.add_argument("--interval", default="2s", help="the server's rollup interval")
    ap.add_argument("--keep", action="store_true", help="keep the server up after the summary")
    Demo(ap.parse_args()).run()


if __name__ == "__main__":
    main()
