"""Command-line mode of mmstats_writer.py: a process that counts at a known pace.

Run `/usr/bin/python3 clients/python/mmstats_writer.py --help`. Tests rely on:
  * the file `{DIR}/{APP}-{PID}-{TID}.mmstats` exists and is fully initialised before the ready
    marker is written (stdout line `ready PATH`, and --ready-file written atomically);
  * counter i (label `counter{i}.count`) grows by i+1 per round, rounds at --rate per second;
  * on SIGTERM/SIGINT, --duration or --rounds (without --linger), the process writes --totals
    atomically with the exact values in the file, then exits 0.
"""

import argparse
import json
import os
import signal
import sys
import time

import mmstats_writer as mw

HELP_EPILOG = """\
fields written (besides the original's sys.* and org.python.version fields):
  counter{i}.count  CounterField (Q)     +(i+1) every round
  gauge{i}.value    DoubleField (d)      round * (i+1) / 10
  queue.depth       UIntField (I)        round %% 50
  load.avg          AverageField (d)     average of round %% 10
  request.time      TimerField (d)       moving average of 0.001 * (round %% 10) seconds
  status            StringField(32s)     "round N"
  healthy           BoolField (?)        true
totals JSON: {"app", "pid", "path", "rounds", "counters": {label: int}, "gauges": {label: num}}
"""


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="mmstats_writer.py", epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write an mmstats v1 file and update it at a known pace.")
    p.add_argument("--app", default="mmstats_writer",
                   help="{CMD} in the file name, i.e. the app name statherd reports")
    p.add_argument("--dir", default=None,
                   help="directory of the file (default $MMSTATS_PATH, else $TMPDIR or /tmp)")
    p.add_argument("--filename", default=None,
                   help="file name template (default $MMSTATS_FILES or {CMD}-{PID}-{TID}.mmstats)")
    p.add_argument("--counters", type=int, default=3, help="number of counters (default 3)")
    p.add_argument("--gauges", type=int, default=2,
                   help="number of extra double gauges (default 2; use 90 for 100-field files)")
    p.add_argument("--rate", type=float, default=10.0, help="rounds per second (default 10)")
    p.add_argument("--rounds", type=int, default=0,
                   help="stop counting after this many rounds (default 0: no limit)")
    p.add_argument("--duration", type=float, default=0.0,
                   help="stop after this many seconds (default 0: until SIGTERM)")
    p.add_argument("--linger", action="store_true",
                   help="after --rounds/--duration, keep the process (and file) alive until SIGTERM")
    p.add_argument("--ready-file", default=None, help="write {pid, path} JSON here when ready")
    p.add_argument("--totals", default=None, help="write the final values as JSON here on exit")
    p.add_argument("--no-sys-fields", action="store_true",
                   help="omit the original's sys.pid/sys.tid/sys.uid/sys.gid/... fields")
    p.add_argument("--remove-on-exit", action="store_true", help="delete the file on exit")
    args = p.parse_args(argv)
    if args.rate <= 0:
        p.error("--rate must be > 0")
    if args.counters < 0 or args.gauges < 0:
        p.error("--counters and --gauges must be >= 0")
    return args


def build_stats_class(args):
    attrs = {}
    for i in range(args.counters):
        attrs["counter%d" % i] = mw.CounterField(label="counter%d.count" % i)
    for i in range(args.gauges):
        attrs["gauge%d" % i] = mw.DoubleField(label="gauge%d.value" % i)
    attrs["queue"] = mw.UIntField(label="queue.depth")
    attrs["load"] = mw.AverageField(label="load.avg")
    attrs["request_time"] = mw.TimerField(label="request.time")
    attrs["status"] = mw.StringField(size=32, label="status")
    attrs["healthy"] = mw.BoolField(label="healthy", initial=True)
    base = mw.BaseMmStats if args.no_sys_fields else mw.MmStats
    return type("CliStats", (base,), attrs)


def write_json_atomically(path, obj):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(obj, f, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def do_round(stats, args, n):
    for i in range(args.counters):
        getattr(stats, "counter%d" % i).incr(i + 1)
    for i in range(args.gauges):
        setattr(stats, "gauge%d" % i, n * (i + 1) / 10.0)
    stats.queue = n % 50
    stats.load.add(n % 10)
    stats.request_time.add(0.001 * (n % 10))
    stats.status = "round %d" % n


def snapshot(stats, args, rounds):
    return {
        "app": args.app, "pid": os.getpid(), "path": stats.filename, "rounds": rounds,
        "counters": {"counter%d.count" % i: getattr(stats, "counter%d" % i).value
                     for i in range(args.counters)},
        "gauges": {"gauge%d.value" % i: getattr(stats, "gauge%d" % i) for i in range(args.gauges)},
    }


def main(argv):
    args = parse_args(argv)
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))
    stats = build_stats_class(args)(path=args.dir, filename=args.filename, cmd=args.app)
    if args.ready_file:
        write_json_atomically(args.ready_file, {"pid": os.getpid(), "path": stats.filename})
    print("ready %s" % stats.filename, flush=True)

    start = time.monotonic()
    rounds = 0
    counting = True
    while not stopping:
        now = time.monotonic()
        if args.duration and now - start >= args.duration:
            counting = False
        while counting and now >= start + rounds / args.rate:
            rounds += 1
            do_round(stats, args, rounds)
            if args.rounds and rounds >= args.rounds:
                counting = False
        if not counting and not args.linger:
            break
        wait = start + rounds / args.rate - time.monotonic() if counting else 0.05
        time.sleep(min(max(wait, 0.001), 0.05))

    if args.totals:
        write_json_atomically(args.totals, snapshot(stats, args, rounds))
    if args.remove_on_exit:
        stats.remove()
    return 0
