"""Counting worker processes for the chaos test, recycled like a pre-fork server's workers.

A WriterPool keeps `slots` workers of each kind alive: mmstats v1 (clients/python/
mmstats_writer.py, counters `counter0.count` +1 and `counter1.count` +2 a round) and statherd v2
(chaos_v2_writer.py, counters `requests` and `bytes_out`). Each worker counts for a random
lifetime and exits, writing its exact totals to a JSON file; the pool (a thread) then starts a
new worker, a new pid, in its slot. stop() SIGTERMs the running ones (they write their totals
and exit 0) and waits for every one of them.
"""

import json
import os
import random
import signal
import threading
import time

import harness

V1_APP = "chaosv1"
V2_APP = "chaosv2"
V2_SCRIPT = os.path.join(harness.HERE, "chaos_v2_writer.py")


class Worker:
    def __init__(self, kind, index, process, totals_file, ready_file):
        self.kind = kind
        self.ready_file = ready_file
        self.index = index
        self.process = process
        self.totals_file = totals_file
        self.app = V1_APP if kind == "v1" else V2_APP
        self.started = time.time()
        self.ended = None
        self.totals = None   # {counter name: exact total} once collected
        self.error = None

    @property
    def pid(self):
        return self.process.pid

    def collect(self):
        """After the process exited: read its totals (or note why not)."""
        self.ended = time.time()
        code = self.process.returncode
        try:
            with open(self.totals_file) as f:
                self.totals = json.load(f)["counters"]
        except (OSError, ValueError, KeyError) as exc:
            self.error = f"exit {code}, no totals file ({exc!r})"
            return
        if code != 0:
            self.error = f"exit {code}\n{self.process.log_tail(2000)}"


class WriterPool:
    def __init__(self, workdir, stats_dir, seed, slots=3, rate=20.0, lifetime=(3.0, 12.0)):
        self.workdir = workdir
        self.stats_dir = stats_dir
        self.rng = random.Random(seed)
        self.slots = slots
        self.rate = rate
        self.lifetime = lifetime
        self.workers = []        # every worker ever started, in start order
        self.running = {}        # (kind, slot) -> Worker
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="chaos-writers", daemon=True)
        os.makedirs(os.path.join(workdir, "writers"), exist_ok=True)

    def _spawn(self, kind, slot):
        index = len(self.workers)
        name = f"writer-{kind}-{index}"
        totals = os.path.join(self.workdir, "writers", f"{name}.totals.json")
        ready = os.path.join(self.workdir, "writers", f"{name}.ready")
        lifetime = self.rng.uniform(*self.lifetime)
        if kind == "v1":
            argv = [harness.PYTHON, harness.WRITER_SCRIPT, "--app", V1_APP, "--dir", self.stats_dir,
                    "--counters", "2", "--gauges", "1", "--rate", str(self.rate),
                    "--duration", f"{lifetime:.3f}", "--totals", totals, "--ready-file", ready]
            env = None
        else:
            argv = [harness.PYTHON, V2_SCRIPT, harness.SOURCE_DIR, totals,
                    str(self.rng.randrange(1 << 30)), str(self.rate), f"{lifetime:.3f}", ready]
            env = {"STATHERD_DIR": self.stats_dir, "STATHERD_APP": V2_APP}
        process = harness.ManagedProcess(name, argv, os.path.join(self.workdir, "writers"), env=env)
        worker = Worker(kind, index, process, totals, ready)
        self.workers.append(worker)
        self.running[(kind, slot)] = worker

    def start(self):
        with self.lock:
            for slot in range(self.slots):
                for kind in ("v1", "v2"):
                    self._spawn(kind, slot)
        self.thread.start()
        return self

    def _loop(self):
        while not self.stop_event.wait(0.1):
            with self.lock:
                for key, worker in list(self.running.items()):
                    if worker.process.poll() is not None:
                        worker.collect()
                        self._spawn(*key)

    def stop(self, timeout=30):
        """SIGTERM every running worker, wait for each, collect its totals. Returns the time
        by which every worker had exited."""
        self.stop_event.set()
        self.thread.join(timeout=30)
        with self.lock:
            for worker in self.running.values():
                # A worker handles SIGTERM once it is ready; one just spawned may not be yet.
                harness.wait_for(lambda: os.path.exists(worker.ready_file)
                                 or not worker.process.running(), timeout,
                                 what=f"{worker.process.name} ready file")
                if worker.process.running():
                    os.kill(worker.pid, signal.SIGTERM)
            for worker in self.running.values():
                try:
                    worker.process.wait(timeout)
                except Exception:  # noqa: BLE001 - a hung writer is killed and reported
                    worker.process.kill()
                worker.collect()
            self.running.clear()
        return time.time()

    def kill_all(self):
        """Cleanup path: SIGKILL whatever still runs (by pid)."""
        self.stop_event.set()
        for worker in self.workers:
            if worker.process.running():
                worker.process.kill()

    def errors(self):
        return [f"{w.process.name} (pid {w.pid}): {w.error}" for w in self.workers if w.error]

    def expected(self):
        """{app: {counter: total over every worker of that app}}."""
        result = {}
        for w in self.workers:
            per_app = result.setdefault(w.app, {})
            for name, value in (w.totals or {}).items():
                per_app[name] = per_app.get(name, 0) + value
        return result

    def count_by_kind(self):
        counts = {"v1": 0, "v2": 0}
        for w in self.workers:
            counts[w.kind] += 1
        return counts
