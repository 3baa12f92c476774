"""statherd: a Python 3 writer of statherd v2 stat files (stdlib only).

    import statherd
    requests = statherd.Counter("requests", "requests served", labelnames=("method",))
    latency = statherd.Histogram("request.seconds")
    queue = statherd.Gauge("queue.depth")
    version = statherd.Info("version")

    requests.labels("GET").inc()
    with latency.time():
        handle()
    queue.set(3)
    version.set("1.2.3")

Each process writes one memory-mapped file, `$STATHERD_DIR/<app>-<pid>.statherd`
(`STATHERD_DIR` default `$TMPDIR/statherd`; `<app>` is `$STATHERD_APP`, default the program's
base name), which statherd-agent reads with `--v2-glob`. The byte format is in docs/FORMAT.md
("statherd v2 stat files"). Writes are thread-safe (a lock per metric child) and cost a few
hundred nanoseconds; a forked child writes its own file with every metric starting at zero.
Histograms use the server sketch's logarithmic buckets (1 % relative accuracy), so percentiles
merge exactly across processes and hosts.
"""

from ._file import default_app_name, default_directory
from ._metrics import ALPHA, GAMMA, Counter, Gauge, Histogram, Info, bucket_index

__all__ = ["Counter", "Gauge", "Histogram", "Info", "stat_file_path", "bucket_index", "ALPHA",
           "GAMMA", "default_directory", "default_app_name"]


def stat_file_path():
    """The path of this process's stat file (None if it is kept in memory only)."""
    from . import _file
    return _file.statfile().path
