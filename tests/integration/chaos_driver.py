"""The chaos driver: carbon-cache + statherd-server + a faulty proxy + statherd-agent (spool on a
small tmpfs) + recycled counting writers; SIGKILL/SIGTERM of server and agent at random, one
spool-full episode, then a drain and the exactly-once check (chaos_report.py).

Everything random comes from one seed (STATHERD_CHAOS_SEED), printed first, so a run can be
repeated (the order of events is the seed's; their exact timing depends on the machine).
Synchronisation is by conditions (a port, /healthz, the agent's status file, the spool
directory, a point in Carbon); the random pauses between faults are the chaos itself.
"""

import json
import math
import os
import random
import signal
import subprocess
import time

import carbon_fixture
import harness
from chaos_proxy import FaultyProxy
from chaos_spool_fs import SpoolFilesystem
from chaos_writers import V1_APP, V2_APP, WriterPool
from pipeline import HOST

TARGETS = ("server", "agent")
SIGNALS = ("KILL", "TERM")


class ChaosConfig:
    def __init__(self, seconds, kills_per_kind, seed, spool_fs_bytes=4 << 20, writer_slots=3,
                 writer_rate=20.0, targets=TARGETS, spool_full=True):
        self.targets = tuple(targets)    # which daemons get killed (isolating a cause)
        self.spool_full = spool_full     # the spool-full episode on or off
        self.seconds = seconds
        self.kills_per_kind = kills_per_kind
        self.seed = seed
        self.spool_fs_bytes = spool_fs_bytes
        self.writer_slots = writer_slots
        self.writer_rate = writer_rate

    @classmethod
    def from_env(cls, default_seconds=60, default_seed=20261201):
        seconds = float(os.environ.get("STATHERD_CHAOS_SECONDS", default_seconds))
        kills = int(os.environ.get("STATHERD_CHAOS_KILLS", max(4, math.ceil(20 * seconds / 600))))
        seed = int(os.environ.get("STATHERD_CHAOS_SEED", default_seed))
        targets = os.environ.get("STATHERD_CHAOS_TARGETS", ",".join(TARGETS)).split(",")
        spool_full = os.environ.get("STATHERD_CHAOS_SPOOL_FULL", "1") != "0"
        return cls(seconds, kills, seed, targets=[t for t in targets if t in TARGETS],
                   spool_full=spool_full)


class Chaos:
    def __init__(self, case, config):
        self.case = case
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.workdir = case.workdir
        self.timeline = []          # (unix time, text)
        self.signals = {(t, s): 0 for t in config.targets for s in SIGNALS}
        self.term_exits = []        # (target, exit code) after SIGTERM
        self.term_timeouts = 0
        self.writers = self.proxy = self.fs = None
        self.final_restarts = 0
        self.t0 = time.time()       # reset when the chaos starts

    def note(self, text):
        self.timeline.append((time.time(), text))

    # -- processes ------------------------------------------------------------------------

    def write_server_config(self):
        """Process level on (a diagnosis per writer), but only the writers' per-pid `count` goes
        to Carbon: hundreds of recycled pids (writers, agent restarts) times every stat would be
        tens of thousands of whisper files. Rules: the last match wins."""
        path = os.path.join(self.workdir, "server.yaml")
        apps = "|".join((V1_APP, V2_APP))
        with open(path, "w") as f:
            f.write("graphite:\n  rules:\n"
                    "    - allow: '^statherd\\.'\n"
                    "    - forbid: '\\.pids\\.'\n"
                    f"    - allow: '^statherd\\.({apps})\\.hosts\\.[^.]+\\.pids\\.[0-9]+\\..*\\.count$'\n")
        return path

    def start_server(self):
        server = harness.StatherdServer(self.workdir, self.case.token_file,
                                        graphite=self.case.carbon.address, port=self.server_port,
                                        state_dir=self.state_dir,
                                        extra_args=["--config", self.server_config, "--level-process"])
        self.case.managed.append(server)
        self.case.server = server
        server.start(timeout=60)
        self.note(f"server up (pid {server.process.pid})")

    def start_agent(self):
        stats = self.case.stats_dir
        agent = harness.StatherdAgent(self.workdir, self.proxy.url, self.case.token_file,
                                      [os.path.join(stats, "*.mmstats")],
                                      counter_patterns=("*.count",), host=HOST,
                                      spool_dir=self.fs.spool_dir,
                                      extra_args=["--v2-glob", os.path.join(stats, "*.statherd")])
        self.case.managed.append(agent)
        self.case.agent = agent
        agent.start()
        self.note(f"agent up (pid {agent.process.pid})")
        # Let it open its spool and write its status file before the next fault; while the
        # spool filesystem is full it cannot, and the chaos goes on regardless.
        if self.fs.filling:
            return
        try:
            harness.wait_for(lambda: self.agent_status().get("pid") == agent.process.pid, 5,
                             what="the agent's status file")
        except harness.WaitTimeout:
            pass

    def process_of(self, target):
        owner = self.case.server if target == "server" else self.case.agent
        return owner.process

    def running(self, target):
        return self.process_of(target).running()

    def restart(self, target):
        (self.start_server if target == "server" else self.start_agent)()

    def send_signal(self, target, sig):
        """SIGKILL or SIGTERM the target (by pid) and wait until it has exited."""
        process = self.process_of(target)
        self.signals[(target, sig)] += 1
        self.note(f"{target} SIG{sig} sent (pid {process.pid})")
        if sig == "KILL":
            process.kill()
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.term_timeouts += 1
            process.kill()
            code = process.returncode
        self.term_exits.append((target, code))
        self.note(f"{target} exited {code} after SIGTERM (pid {process.pid})")

    def agent_status(self):
        try:
            with open(os.path.join(self.fs.spool_dir, "status.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    # -- phases ---------------------------------------------------------------------------

    def setup(self):
        case = self.case
        case.token_file = harness.write_token_file(self.workdir)
        # 30 minutes of 1 s points: a 10-minute run creates a whisper file per recycled pid.
        case.carbon = carbon_fixture.CarbonCache(self.workdir, retentions="1s:30m")
        case.managed.append(case.carbon)
        case.carbon.start()
        self.server_port = harness.free_port()
        self.state_dir = os.path.join(self.workdir, "server-state")
        self.server_config = self.write_server_config()
        self.start_server()
        self.proxy = FaultyProxy(self.server_port, seed=self.cfg.seed + 1).start()
        self.fs = SpoolFilesystem(os.path.join(self.workdir, "spool-fs"), self.cfg.spool_fs_bytes)
        case.addCleanup(self.cleanup)  # runs before the base class stops the daemons
        self.fs.mount()
        case.write_sentinel()
        self.start_agent()
        case.wait_first_batch(timeout=60)

    def cleanup(self):
        """Every exit path: writers, agent (it holds files on the tmpfs), proxy, the mount."""
        try:
            if self.writers is not None:
                self.writers.kill_all()
            if self.case.agent is not None:
                self.case.agent.stop()
        finally:
            if self.proxy is not None:
                self.proxy.stop()
            if self.fs is not None:
                self.fs.unmount()

    def schedule(self, start):
        """[(time, target, signal)]: kills_per_kind of each (target, signal), shuffled, spread
        evenly over the run with jitter."""
        kinds = [(t, s) for t in self.cfg.targets for s in SIGNALS] * self.cfg.kills_per_kind
        if not kinds:
            return []
        self.rng.shuffle(kinds)
        step = self.cfg.seconds * 0.92 / len(kinds)
        return [(start + step * (i + 0.5) + self.rng.uniform(-0.4, 0.4) * step, t, s)
                for i, (t, s) in enumerate(kinds)]

    def down_time(self):
        return 0.0 if self.rng.random() < 0.35 else self.rng.uniform(0.2, 3.0)

    def run(self):
        cfg = self.cfg
        start = time.monotonic()
        end = start + cfg.seconds
        events = self.schedule(start)
        fill_at = start + self.rng.uniform(0.3, 0.5) * cfg.seconds
        fill_until = fill_at + max(8.0, 0.15 * cfg.seconds)
        restarts = {}  # target -> monotonic time it is due back
        self.writers = WriterPool(self.workdir, self.case.stats_dir, self.cfg.seed + 2,
                                  slots=cfg.writer_slots, rate=cfg.writer_rate).start()
        self.proxy.faulty = True
        self.t0 = time.time()
        self.note("chaos starts")
        while True:
            now = time.monotonic()
            for target, due in sorted(restarts.items()):
                if now >= due:
                    del restarts[target]
                    self.restart(target)
            if events and now >= events[0][0]:
                _, target, sig = events.pop(0)
                if target in restarts:  # still down from an earlier fault: back first
                    del restarts[target]
                    self.restart(target)
                self.send_signal(target, sig)
                restarts[target] = time.monotonic() + self.down_time()
            self.step_spool_fill(now, fill_at, fill_until)
            if now >= end and not events:
                break
            time.sleep(0.05)  # the scheduler's tick, not a synchronisation
        if self.fs.filling:
            self.fs.remove_ballast()
            self.note("spool filesystem freed (end of chaos)")
        self.proxy.faulty = False
        self.chaos_seconds = time.monotonic() - start
        self.note("chaos ends")

    def step_spool_fill(self, now, fill_at, fill_until):
        if not self.cfg.spool_full:
            return
        if self.fs.episodes == 0 and now >= fill_at:
            self.fs.fill()
            self.note(f"spool filesystem full (free {self.fs.free_bytes()} bytes)")
        elif self.fs.filling and now >= fill_until:
            self.fs.remove_ballast()
            self.note("spool filesystem freed")
        elif self.fs.filling:
            self.fs.top_up()

    def drain(self, timeout=120):
        """Stops the writers, restarts server and agent normally (a clean backoff), waits until
        the agent has read every writer's final values, its spool is empty and the server has
        emitted an interval after that. Returns a dict of the drain's figures."""
        writers_done = self.writers.stop()
        self.note("writers stopped")
        for target in TARGETS:
            if self.running(target):
                process = self.process_of(target)
                process.stop(timeout=30)
                self.note(f"{target} stopped for the drain -> exit {process.returncode}")
            self.restart(target)
            self.final_restarts += 1
        interval_ms = 1000
        harness.wait_for(lambda: self.agent_status().get("last_tick_ms", 0)
                         >= writers_done * 1000 + 2 * interval_ms, 60, interval=0.1,
                         what="the agent's scan after every writer exited")
        spool = self.fs.spool_dir
        harness.wait_for(lambda: self.agent_alive() and not [
            n for n in os.listdir(spool) if n.endswith(".batch")], timeout, interval=0.1,
            what=f"the agent's spool {spool} to be empty")
        emptied = time.time()
        self.note("spool empty")
        sentinel = "statherd.sentinel.up.max"
        harness.wait_for(lambda: any(ts >= emptied + 1 for ts, _ in self.case.carbon.fetch(sentinel)),
                         60, interval=0.2, what="an interval emitted after the spool drained")
        return {"drained_after_s": emptied - writers_done}

    def agent_alive(self):
        if not self.running("agent"):
            raise AssertionError(f"statherd-agent exited during the drain\n"
                                 f"{self.case.agent.process.log_tail()}")
        return True
