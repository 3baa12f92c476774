#!/usr/bin/python3
"""The statherd demo: statherd-server (Graphite output to a file we tail), statherd-agent and
three Python processes writing mmstats v1 files, all on loopback in a temp dir, for about 30
seconds or until Ctrl-C. Prints what Graphite receives, then a /render and a /metrics/find."""
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRITER = os.path.join(ROOT, "clients", "python", "mmstats_writer.py")
V2_WRITER = os.path.join(ROOT, "scripts", "demo_v2_writer.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise SystemExit("demo: timed out waiting for " + what)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


MAX_LINES = 24


def show_new_lines(path, offset, interesting):
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    # Only whole lines; a partial last line is read again next time.
    data = data[:data.rfind(b"\n") + 1]
    lines = [l for l in data.decode(errors="replace").splitlines() if interesting(l)]
    if lines:
        print("Graphite receives (a few app-level series; all of them, host level too, "
              "in the file):")
    for line in lines[:MAX_LINES]:
        p, v, ts = line.split(" ")
        print("  %-52s %12.6g  %s" % (p, float(v),
                                      time.strftime("%H:%M:%S", time.localtime(int(ts)))))
    if len(lines) > MAX_LINES:
        print("  ... and %d more lines" % (len(lines) - MAX_LINES))
    return offset + len(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--interval", default="2s")
    args = ap.parse_args()
    bindir = os.path.abspath(os.path.join(ROOT, args.build))
    tmp = tempfile.mkdtemp(prefix="statherd-demo-")
    stats = os.path.join(tmp, "stats")
    os.makedirs(stats, mode=0o700)
    token = os.path.join(tmp, "token")
    fd = os.open(token, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, os.urandom(16).hex().encode())
    os.close(fd)
    port = free_port()
    graphite_out = os.path.join(tmp, "graphite.txt")
    procs = []

    def start(cmd, log, stdout=None):
        p = subprocess.Popen(cmd, stdout=stdout or subprocess.DEVNULL,
                             stderr=open(os.path.join(tmp, log), "wb"))
        procs.append(p)
        return p

    print("demo: working directory %s" % tmp)
    start([os.path.join(bindir, "statherd-server"), "--listen", "127.0.0.1:%d" % port,
           "--token-file", token, "--interval", args.interval, "--state-dir",
           os.path.join(tmp, "server-state"), "--graphite", "-"], "server.log",
          stdout=open(graphite_out, "wb"))
    wait_until(lambda: port_open(port), 15, "statherd-server on port %d" % port)
    start([os.path.join(bindir, "statherd-agent"), "--server", "http://127.0.0.1:%d" % port,
           "--token-file", token, "--interval", args.interval, "--mmstats-glob",
           os.path.join(stats, "*.mmstats"), "--v2-glob", os.path.join(stats, "*.statherd"),
           "--spool-dir", os.path.join(tmp, "spool"), "--host", "demo-host"], "agent.log")
    wait_until(lambda: get_json("http://127.0.0.1:%d/api/v1/sources" % port).get("agents"),
               15, "the agent's first batch")
    for app, rate in (("api", 20), ("api", 10), ("worker", 5)):
        start(["/usr/bin/python3", WRITER, "--app", app, "--dir", stats, "--rate", str(rate),
               "--counters", "2", "--gauges", "1", "--duration", str(args.seconds + 60)],
              "writer-%s-%d.log" % (app, rate))
    v2_env = dict(os.environ, STATHERD_DIR=stats, STATHERD_APP="checkout")
    for rate in (10, 5):
        p = subprocess.Popen(["/usr/bin/python3", V2_WRITER, "--rate", str(rate), "--duration",
                              str(args.seconds + 60)], env=v2_env, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(tmp, "writer-checkout-%d.log" % rate), "wb"))
        procs.append(p)
    print("demo: server on 127.0.0.1:%d, an agent, and 5 Python processes:\n"
          "  api (mmstats, 2 processes at 20/s and 10/s): counter0.count.rate should read 30,\n"
          "    counter1 (2 per request) 60; .count is the interval's increments\n"
          "  worker (mmstats, 1 process at 5/s): counter0.count.rate 5, counter1 10\n"
          "  checkout (statherd v2 client, 2 processes at 10/s and 5/s): requests.rate 15;\n"
          "    latency uniform in 10..50 ms, merged over both: p50 ~0.030, p99 ~0.0496\n"
          "Each line: Graphite path, value, interval start: a point holds what the agent read in\n"
          "that interval (it reads at interval starts, so mostly what was counted in the\n"
          "interval before; the first one is partial). Ctrl-C to stop early.\n" % port)

    def interesting(line):
        if ".hosts." in line:
            return False
        if line.startswith("statherd.self."):  # the daemons' own metrics: one line of them
            return line.startswith("statherd.self.server.samples_in.rate ")
        if ".sys." in line:  # mmstats' built-in pid/uid/created fields
            return False
        return any(k in line for k in (".count.rate ", ".count.count ", "queue.depth.max ",
                                       "requests.rate ", "requests.count ", "latency.p50 ",
                                       "latency.p99 ", "latency.count "))
    offset = 0
    stop = time.monotonic() + args.seconds
    try:
        while time.monotonic() < stop:
            time.sleep(2)
            offset = show_new_lines(graphite_out, offset, interesting)
    except KeyboardInterrupt:
        print("\ndemo: interrupted")
    finally:
        for p in procs[2:]:
            p.send_signal(signal.SIGTERM)
        try:
            base = "http://127.0.0.1:%d" % port
            target = "statherd.api.counter0.count.rate"
            print("\nGET /render?target=%s&from=-2min&format=json" % target)
            for series in get_json(base + "/render?target=%s&from=-2min&format=json" % target):
                pts = [(ts, v) for v, ts in series["datapoints"] if v is not None][-8:]
                print("  %s: %s" % (series["target"],
                                    ", ".join("%s=%g" % (time.strftime("%H:%M:%S", time.localtime(t)), v)
                                              for t, v in pts)))
            print("\nGET /metrics/find?query=statherd.*.*")
            for n in get_json(base + "/metrics/find?query=statherd.*.*"):
                print("  %s%s" % (n["id"], "" if n["leaf"] else "."))
        except OSError as e:
            print("demo: could not query the server: %s" % e)
        # The agent first: on SIGTERM it reads once more and ships while the server still runs.
        for p in procs[:2][::-1]:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        print("\ndemo: all Graphite lines are in %s; logs in %s" % (graphite_out, tmp))


if __name__ == "__main__":
    main()
