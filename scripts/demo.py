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
    for line in lines[:14]:
        p, v, ts = line.split(" ")
        print("  %-52s %12.6g  %s" % (p, float(v),
                                      time.strftime("%H:%M:%S", time.localtime(int(ts)))))
    if len(lines) > 14:
        print("  ... and %d more lines" % (len(lines) - 14))
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
           os.path.join(stats, "*.mmstats"), "--spool-dir", os.path.join(tmp, "spool"),
           "--host", "demo-host"], "agent.log")
    wait_until(lambda: get_json("http://127.0.0.1:%d/api/v1/sources" % port).get("agents"),
               15, "the agent's first batch")
    for app, rate in (("api", 20), ("api", 10), ("worker", 5)):
        start(["/usr/bin/python3", WRITER, "--app", app, "--dir", stats, "--rate", str(rate),
               "--counters", "2", "--gauges", "1", "--duration", str(args.seconds + 60)],
              "writer-%s-%d.log" % (app, rate))
    print("demo: server on 127.0.0.1:%d, agent and 3 writers (api x2, worker x1) running; "
          "Ctrl-C to stop early\n" % port)

    def interesting(line):
        if ".hosts." in line:
            return False
        if line.startswith("statherd.self."):  # the daemons' own metrics: one line of them
            return line.startswith("statherd.self.server.samples_in.rate ")
        return any(k in line for k in (".count.rate ", ".count.m1_rate ", "queue.depth.p99 ",
                                       "queue.depth.max ", "request.time.max "))
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
        for p in procs[:2][::-1]:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        print("\ndemo: all Graphite lines are in %s; logs in %s" % (graphite_out, tmp))


if __name__ == "__main__":
    main()
