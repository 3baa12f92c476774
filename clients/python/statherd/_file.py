"""The statherd v2 stat file of this process (docs/FORMAT.md, "statherd v2 stat files").

One file per process, `$STATHERD_DIR/<app>-<pid>.statherd`: a 256-byte header, then records
(one per metric child) appended under `StatFile.lock`. A record is written completely (seq 0)
before the header's `used` is advanced past it, so a reader never sees half a record.

Growing: the file is truncated larger and mapped again as a *new* mmap object (no
`mmap.resize`, which memoryviews held by the metrics would block). Every field is then given
views of the new map. A thread that still holds a view of the old map writes into the same
file pages (MAP_SHARED), so nothing is lost; the old map is unmapped once nobody holds it.

Fork: `os.register_at_fork` gives a forked child its own file with every field re-created at
zero, and fresh locks (a lock held by another thread at fork time would stay held forever).
"""

import mmap
import os
import struct
import sys
import threading
import time
import warnings

MAGIC = b"STHRDv2\0"
FORMAT_VERSION = 2
HEADER_SIZE = 256
APP_NAME_MAX = 190
RECORD_HEADER = struct.Struct("<IBBHHH")  # record_size, kind, flags, name_len, tags_len, reserved
INITIAL_SIZE = 64 * 1024
USED_INDEX = 40 // 8        # header `used` as an index into the u64 view
HEARTBEAT_INDEX = 32 // 8

KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM, KIND_TEXT = 1, 2, 3, 4

if sys.byteorder != "little":
    raise ImportError("statherd: the v2 stat format is little-endian and this host is big-endian\n"
                      "hint: statherd v2 files cannot be written here; use prometheus_client")


def _env(name):
    value = os.environ.get(name)
    return value if value else None


def default_directory():
    """$STATHERD_DIR, else $TMPDIR/statherd, else /tmp/statherd."""
    return _env("STATHERD_DIR") or os.path.join(_env("TMPDIR") or "/tmp", "statherd")


def default_app_name():
    """$STATHERD_APP, else the program's base name without `.py` (or "python")."""
    app = _env("STATHERD_APP")
    if app is None:
        argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
        app = os.path.basename(argv0)
        if app.endswith(".py"):
            app = app[:-3]
        if app in ("", "-c", "-m", "-"):
            app = "python"
    return sanitize_app_name(app)


def sanitize_app_name(app):
    """A file-name-safe app name of at most APP_NAME_MAX UTF-8 bytes."""
    cleaned = "".join(c if (c.isalnum() or c in "._-") and c != "\0" else "_" for c in app)
    cleaned = cleaned.lstrip(".") or "python"
    raw = cleaned.encode("utf-8")[:APP_NAME_MAX]
    return raw.decode("utf-8", "ignore")


def process_start_ms():
    """Start time of this process in ms since the epoch, as the agent computes it from /proc
    (btime * 1000 + starttime_ticks * 1000 // CLK_TCK); the wall clock if /proc is unreadable."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        ticks = int(stat[stat.rindex(b")") + 1:].split()[19])
        with open("/proc/stat", "rb") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        hz = os.sysconf("SC_CLK_TCK")
        return btime * 1000 + ticks * 1000 // (hz if hz > 0 else 100)
    except (OSError, ValueError, IndexError, StopIteration):
        return int(time.time() * 1000)


def _round_up(n, to):
    return (n + to - 1) // to * to


class StatFile:
    """The mapped file plus the list of fields in it (creation order)."""

    def __init__(self, directory=None, app=None):
        self.lock = threading.Lock()
        self.fields = []
        self.names = set()
        self.directory = directory or default_directory()
        self.app = sanitize_app_name(app) if app else default_app_name()
        self.path = None
        self._open_new()

    # -- creating and mapping --------------------------------------------------------------

    def _open_new(self):
        """Creates and maps a fresh file for the current pid (header only, `used` = 256)."""
        self.pid = os.getpid()
        self.start_ms = process_start_ms()
        self.fd = None
        self.size = INITIAL_SIZE
        self.used = HEADER_SIZE
        try:
            self.fd, self.path = self._create_file()
            self.mm = mmap.mmap(self.fd, self.size)
        except OSError as exc:
            warnings.warn(f"statherd: cannot create a stat file in {self.directory}: {exc}\n"
                          "hint: set STATHERD_DIR to a writable directory; metrics of this process "
                          "are kept in memory only", RuntimeWarning, stacklevel=5)
            if self.fd is not None:
                os.close(self.fd)
            self.fd, self.path = None, None
            self.mm = mmap.mmap(-1, self.size)
            self._write_header(self.mm)
        self._make_views()

    def _create_file(self):
        """Writes the header to a temp file and renames it into place, so a reader never maps a
        file of ours that is shorter than its header, and a stale file of a dead process with
        the same pid is replaced (not truncated under a reader's mapping)."""
        os.makedirs(self.directory, mode=0o755, exist_ok=True)
        final = os.path.join(self.directory, f"{self.app}-{self.pid}.statherd")
        temp = os.path.join(self.directory, f".{self.app}-{self.pid}.statherd.tmp")
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            os.ftruncate(fd, self.size)
            header = bytearray(HEADER_SIZE)
            self._fill_header(header)
            os.pwrite(fd, header, 0)
            os.rename(temp, final)
        except OSError:
            os.close(fd)
            raise
        return fd, final

    def _fill_header(self, buf):
        app = self.app.encode("utf-8")
        struct.pack_into("<8sIIQQQQQH", buf, 0, MAGIC, FORMAT_VERSION, HEADER_SIZE, self.pid,
                         self.start_ms, int(time.time() * 1000), self.used, 0, len(app))
        buf[58:58 + len(app)] = app

    def _write_header(self, mm):
        header = bytearray(HEADER_SIZE)
        self._fill_header(header)
        mm[0:HEADER_SIZE] = bytes(header)

    def _make_views(self):
        self.bytes_view = memoryview(self.mm)
        self.u64_view = self.bytes_view.cast("Q")
        self.f64_view = self.bytes_view.cast("d")
        for field in self.fields:
            field._bind(self.bytes_view, self.u64_view, self.f64_view)

    def _grow(self, needed):
        new_size = _round_up(max(self.size * 2, needed), mmap.PAGESIZE)
        if self.fd is not None:
            os.ftruncate(self.fd, new_size)
            new_mm = mmap.mmap(self.fd, new_size)
        else:  # memory only: copy (a racing write to the old copy may be lost; see warning)
            new_mm = mmap.mmap(-1, new_size)
            new_mm[0:self.size] = self.mm[0:self.size]
        self.mm, self.size = new_mm, new_size
        self._make_views()

    # -- records ---------------------------------------------------------------------------

    def add_field(self, field):
        """Appends `field`'s record and binds the field to it. Caller holds self.lock."""
        self._append_record(field)
        self.fields.append(field)

    def _append_record(self, field):
        kind, name, tags, value_area = field._record_spec()
        seq_rel = _round_up(RECORD_HEADER.size + len(name) + len(tags), 8)
        size = seq_rel + 8 + len(value_area)
        record = bytearray(size)
        RECORD_HEADER.pack_into(record, 0, size, kind, 0, len(name), len(tags), 0)
        record[RECORD_HEADER.size:RECORD_HEADER.size + len(name)] = name
        start = RECORD_HEADER.size + len(name)
        record[start:start + len(tags)] = tags
        record[seq_rel + 8:] = value_area
        offset = self.used
        if offset + size > self.size:
            self._grow(offset + size)
        self.mm[offset:offset + size] = bytes(record)
        self.used = offset + size
        # `used` last: the record is complete before a reader may look at it.
        self.u64_view[HEARTBEAT_INDEX] = int(time.time() * 1000)
        self.u64_view[USED_INDEX] = self.used
        field._seq_index = (offset + seq_rel) // 8
        field._bind(self.bytes_view, self.u64_view, self.f64_view)

    # -- fork ------------------------------------------------------------------------------

    def reopen_in_child(self):
        """In a forked child: new locks, a new file for this pid, every field at zero."""
        self.lock = threading.Lock()
        old_fd = self.fd
        self._open_new()
        if old_fd is not None:
            os.close(old_fd)
        for field in self.fields:
            field._lock = threading.Lock()
            self._append_record(field)


_statfile = None
_statfile_guard = threading.Lock()


def statfile():
    """The process's StatFile, created on first use."""
    global _statfile
    if _statfile is None:
        with _statfile_guard:
            if _statfile is None:
                _statfile = StatFile()
    return _statfile


def _before_fork():
    _statfile_guard.acquire()
    if _statfile is not None:
        _statfile.lock.acquire()


def _after_fork_in_parent():
    if _statfile is not None:
        _statfile.lock.release()
    _statfile_guard.release()


def _after_fork_in_child():
    global _statfile_guard
    _statfile_guard = threading.Lock()
    if _statfile is not None and _statfile.pid != os.getpid():
        _statfile.reopen_in_child()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork_in_child)
