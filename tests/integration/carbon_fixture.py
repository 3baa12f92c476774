"""A real carbon-cache (Debian graphite-carbon 1.1.x) for the integration tests.

carbon-cache runs in the foreground (--debug) with its own carbon.conf in a temp dir: line
receiver on a free 127.0.0.1 port, pickle receiver and cache query on other free loopback ports,
no UDP, unlimited creates, whisper autoflush; tags off, or (graphite_url given) on, each new
series registered with that graphite-web's tag database as carbon does it. storage-schemas.conf (1 s resolution) is
read from CONF_DIR, which carbon sets to the directory of the --config file. Points are read back
with python3-whisper straight from the .wsp files, polling until they arrive.
"""

import glob
import os
import time

import harness



class CarbonCache:
    """A real carbon-cache on loopback ports with its whisper files in a temp dir."""

    def __init__(self, workdir, retentions="1s:2h", graphite_url=None, aggregation=None):
        self.root = os.path.join(workdir, "carbon")
        self.conf_dir = os.path.join(self.root, "conf")
        self.storage_dir = os.path.join(self.root, "storage")
        self.whisper_dir = os.path.join(self.storage_dir, "whisper")
        for d in (self.conf_dir, self.whisper_dir, os.path.join(self.storage_dir, "log")):
            os.makedirs(d, exist_ok=True)
        self.workdir = workdir
        self.retentions = retentions
        self.graphite_url = graphite_url
        # [(pattern, method)], first match wins: how Whisper's coarser archives aggregate.
        self.aggregation = aggregation or [(".*", "sum")]
        self.host = "127.0.0.1"
        self.line_port = harness.free_port()
        self.pickle_port = harness.free_port()
        self.query_port = harness.free_port()
        self.process = None

    @property
    def address(self):
        return f"{self.host}:{self.line_port}"

    def _tags_config(self):
        if not self.graphite_url:
            return "ENABLE_TAGS = False"
        return (f"ENABLE_TAGS = True\nGRAPHITE_URL = {self.graphite_url}\n"
                "TAG_BATCH_SIZE = 100\nTAG_UPDATE_INTERVAL = 100")

    def _write_config(self):
        conf = f"""[cache]
STORAGE_DIR = {self.storage_dir}
LOCAL_DATA_DIR = {self.whisper_dir}
WHITELISTS_DIR = {self.storage_dir}/lists
LOG_DIR = {self.storage_dir}/log
PID_DIR = {self.storage_dir}
DATABASE = whisper
ENABLE_LOGROTATION = False
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = 100000
MAX_UPDATES_PER_SECOND_ON_SHUTDOWN = 100000
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = {self.host}
LINE_RECEIVER_PORT = {self.line_port}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = {self.host}
PICKLE_RECEIVER_PORT = {self.pickle_port}
CACHE_QUERY_INTERFACE = {self.host}
CACHE_QUERY_PORT = {self.query_port}
USE_FLOW_CONTROL = True
CACHE_WRITE_STRATEGY = naive
WHISPER_AUTOFLUSH = True
WHISPER_FALLOCATE_CREATE = False
{self._tags_config()}
LOG_UPDATES = False
LOG_CREATES = False
LOG_LISTENER_CONN_SUCCESS = False
CARBON_METRIC_INTERVAL = 0
"""
        with open(os.path.join(self.conf_dir, "carbon.conf"), "w") as f:
            f.write(conf)
        # carbon reads storage-schemas.conf from CONF_DIR = the carbon.conf's directory.
        with open(os.path.join(self.conf_dir, "storage-schemas.conf"), "w") as f:
            f.write(f"[everything]\npattern = .*\nretentions = {self.retentions}\n")
        with open(os.path.join(self.conf_dir, "storage-aggregation.conf"), "w") as f:
            for i, (pattern, method) in enumerate(self.aggregation):
                f.write(f"[rule{i}]\npattern = {pattern}\nxFilesFactor = 0\n"
                        f"aggregationMethod = {method}\n")

    def start(self, timeout=60):
        self._write_config()
        argv = ["/usr/bin/carbon-cache", f"--config={self.conf_dir}/carbon.conf",
                f"--pidfile={self.storage_dir}/carbon-cache.pid", "--debug", "start"]
        env = {"GRAPHITE_ROOT": self.root, "GRAPHITE_CONF_DIR": self.conf_dir}
        self.process = harness.ManagedProcess("carbon-cache", argv, self.workdir, env=env)
        harness.wait_for_port(self.host, self.line_port, timeout, process=self.process)
        return self

    def stop(self):
        if self.process is not None:
            self.process.stop(timeout=15)

    def whisper_path(self, metric):
        return os.path.join(self.whisper_dir, *metric.split(".")) + ".wsp"

    def metrics(self, prefix=""):
        """Every metric name with a whisper file, optionally under a dotted prefix."""
        names = []
        for path in glob.glob(os.path.join(self.whisper_dir, "**", "*.wsp"), recursive=True):
            rel = os.path.relpath(path, self.whisper_dir)[: -len(".wsp")]
            name = rel.replace(os.sep, ".")
            if name.startswith(prefix):
                names.append(name)
        return sorted(names)

    def fetch(self, metric, since_seconds=7200):
        """[(timestamp, value)] of the non-empty points of metric (empty if no file yet)."""
        import whisper  # Debian python3-whisper

        path = self.whisper_path(metric)
        if not os.path.exists(path):
            return []
        now = int(time.time())
        result = whisper.fetch(path, now - since_seconds + 1, now + 60)
        if result is None:
            return []
        (start, _end, step), values = result
        return [(start + i * step, v) for i, v in enumerate(values) if v is not None]

    def sum(self, metric):
        return sum(v for _, v in self.fetch(metric))
