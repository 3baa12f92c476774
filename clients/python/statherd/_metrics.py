"""Counter, Gauge, Histogram and Info: the metric API over the v2 stat file.

A metric without labels is itself the field that owns a record. A metric with labels owns no
record; `labels(...)` returns (and caches) a child of the same class that does.

Every write happens under the field's own lock (acquire/release: cheaper than `with`), so
threads never lose an increment. Values are written through memoryview casts of the map ('Q'
for u64, 'd' for f64): every value is 8-byte aligned, so the value at byte offset o is index
o // 8 and each store is one aligned 8-byte store. A counter or gauge value is one such store,
which a reader cannot see torn, so its seq stays 0 (docs/FORMAT.md allows that). Histograms and
text follow the writer protocol: seq odd, write the value area, seq even; the next seq comes
from a Python-side copy (no read of the map), input is checked before seq turns odd, and
`finally` makes seq even again even if a store raises.
"""

import functools
import struct
import threading
import time
from math import ceil, inf, log

from . import _file

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
LN_GAMMA = log(GAMMA)       # divide by it (as common/sketch.cpp does); never multiply by 1/ln
ZERO_MAX = 1e-9             # x <= ZERO_MAX (and negative x) count in zero_count
DEFAULT_RANGE = (1e-6, 1e6)
MAX_BUCKETS = 4096         # the server sketch keeps at most this many (common/sketch.h)
NAME_MAX = 1024
TEXT_CAPACITY = 256
HIST_HEADER_WORDS = 6       # count, sum, min, max, zero_count, (i32 offset, u32 n)


def bucket_index(x):
    """The sketch bucket of x > 0: ceil(ln x / ln gamma), exactly as common/sketch.cpp."""
    return ceil(log(x) / LN_GAMMA)


class _LabelledParent:
    """Stands in for the lock of a metric that has labels: using it without labels() fails."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def acquire(self):
        self.__enter__()

    def __enter__(self):
        raise ValueError(f"statherd: metric {self.name!r} has labels and no value of its own\n"
                         f"hint: call {self.name}.labels(...) first")

    def __exit__(self, *exc):
        return False


def _check_text(what, text):
    if not isinstance(text, str) or not text or "\0" in text:
        raise ValueError(f"statherd: {what} must be a non-empty string without NUL: {text!r}")
    return text


class _Metric:
    __slots__ = ("name", "documentation", "labelnames", "_lock", "_seq_index", "_value_index",
                 "_seq", "_q", "_d",
                 "_children", "_tags", "_parent_args", "__weakref__")
    _kind = 0

    def __init__(self, name, documentation="", labelnames=(), **options):
        self.name = _check_text("metric name", name)
        if len(name.encode("utf-8")) > NAME_MAX:
            raise ValueError(f"statherd: metric name longer than {NAME_MAX} bytes: {name[:40]!r}...")
        if isinstance(labelnames, str):
            labelnames = (labelnames,)
        self.labelnames = tuple(_check_text("label name", n) for n in labelnames)
        if len(set(self.labelnames)) != len(self.labelnames):
            raise ValueError(f"statherd: repeated label name in {self.labelnames!r}")
        self.documentation = documentation
        self._configure(**options)
        self._tags = b""
        self._children = {} if self.labelnames else None
        self._lock = _LabelledParent(name) if self.labelnames else threading.Lock()
        sf = _file.statfile()
        with sf.lock:
            if name in sf.names:
                raise ValueError(f"statherd: a metric named {name!r} already exists in this "
                                 "process\nhint: create each metric once (at module level) and "
                                 "reuse it")
            if not self.labelnames:
                sf.add_field(self)
            sf.names.add(name)

    def _configure(self):
        pass

    def _bind(self, bytes_view, u64_view, f64_view):
        self._q = u64_view
        self._d = f64_view
        self._value_index = self._seq_index + 1

    def _record_spec(self):
        self._seq = 0
        return self._kind, self.name.encode("utf-8"), self._tags, self._value_area()

    def labels(self, *values, **labelkwargs):
        """The child for these label values (created on first use, then cached)."""
        children = self._children
        if children is None:
            raise ValueError(f"statherd: metric {self.name!r} has no labels\n"
                             "hint: declare labelnames=(...) when creating it")
        if labelkwargs:
            if values or set(labelkwargs) != set(self.labelnames):
                raise ValueError(f"statherd: {self.name!r} takes labels {self.labelnames!r}, "
                                 f"got {values!r} {labelkwargs!r}")
            values = tuple(labelkwargs[n] for n in self.labelnames)
        try:
            child = children.get(values)
        except TypeError:  # an unhashable label value: _new_child converts it with str()
            child = None
        if child is None:
            child = self._new_child(values)
        return child

    def _new_child(self, values):
        if len(values) != len(self.labelnames):
            raise ValueError(f"statherd: {self.name!r} takes {len(self.labelnames)} label values "
                             f"{self.labelnames!r}, got {values!r}")
        key = tuple(str(v) for v in values)
        for v in key:
            if "\0" in v:
                raise ValueError(f"statherd: label value with NUL: {v!r}")
        tags = b"".join(k.encode("utf-8") + b"\0" + v.encode("utf-8") + b"\0"
                        for k, v in zip(self.labelnames, key))
        if len(tags) > 0xFFFF:
            raise ValueError(f"statherd: label values of {self.name!r} longer than 65535 bytes")
        sf = _file.statfile()
        with sf.lock:
            child = self._children.get(key)
            if child is None:
                child = object.__new__(type(self))
                child.name, child.documentation, child.labelnames = self.name, self.documentation, ()
                child._children, child._tags = None, tags
                child._copy_options(self)
                child._lock = threading.Lock()
                sf.add_field(child)
                self._children[key] = child
            try:
                self._children[values] = child
            except TypeError:  # unhashable label value: only the str key caches it
                pass
        return child

    def _copy_options(self, parent):
        pass

    def __repr__(self):
        return f"statherd.{type(self).__name__}({self.name!r})"


class Counter(_Metric):
    """A monotonic count (cumulative in this process): `inc(amount=1)`, amount >= 0."""
    __slots__ = ()
    _kind = _file.KIND_COUNTER

    def _value_area(self):
        return bytes(8)

    def inc(self, amount=1):
        if not 0 <= amount < inf:
            raise ValueError(f"statherd: counter {self.name!r} increment must be finite and >= 0, "
                             f"got {amount!r}\nhint: use a Gauge for values that go down")
        lock = self._lock
        lock.acquire()
        try:
            self._d[self._value_index] += amount
        finally:
            lock.release()

    def get(self):
        """The current value (for tests and debugging)."""
        return self._d[self._seq_index + 1]


class Gauge(_Metric):
    """A point value: `set(v)`, `inc(amount=1)`, `dec(amount=1)`, `set_to_current_time()`."""
    __slots__ = ()
    _kind = _file.KIND_GAUGE

    def _value_area(self):
        return bytes(8)

    def set(self, value):
        lock = self._lock
        lock.acquire()
        try:
            self._d[self._value_index] = value
        finally:
            lock.release()

    def inc(self, amount=1):
        lock = self._lock
        lock.acquire()
        try:
            self._d[self._value_index] += amount
        finally:
            lock.release()

    def dec(self, amount=1):
        self.inc(-amount)

    def set_to_current_time(self):
        self.set(time.time())

    def get(self):
        return self._d[self._seq_index + 1]


class _Timer:
    """Histogram.time(): a context manager and a decorator observing elapsed seconds."""
    __slots__ = ("_histogram", "_start")

    def __init__(self, histogram):
        self._histogram = histogram
        self._start = None

    def __enter__(self):
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self._histogram.observe(time.perf_counter() - self._start)
        return False

    def __call__(self, func):
        histogram = self._histogram

        @functools.wraps(func)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - start)
        return timed


class Histogram(_Metric):
    """A distribution in the server sketch's logarithmic buckets (alpha = 1 %), so percentiles
    merge exactly across processes. `buckets=(lo, hi)` sets the pre-allocated value range
    (default 1e-6 .. 1e6); values outside it count in the first or last bucket (min and max
    stay exact). Values <= 1e-9 (negative ones too) count as zero. NaN and +-Inf are dropped
    silently (not counted, never raised into the request path: the server's sketch needs a
    finite sum, min and max). A prometheus_client-style list of bounds is accepted: its smallest positive
    and largest finite bound give the range."""
    __slots__ = ("_lo_index", "_hi_index", "_bucket_base", "_zero_index", "_min", "_max")
    _kind = _file.KIND_HISTOGRAM

    def _configure(self, buckets=DEFAULT_RANGE):
        bounds = [float(b) for b in buckets]
        positive = [b for b in bounds if 0 < b < inf]
        if len(positive) < 2 or min(positive) >= max(positive):
            raise ValueError(f"statherd: histogram {self.name!r} buckets must be a range (lo, hi) "
                             f"with 0 < lo < hi, got {buckets!r}")
        self._bucket_base = self._zero_index = 0  # set by _bind; a labelled parent has no record
        lo, hi = max(min(positive), ZERO_MAX * 1.0000001), max(positive)
        self._lo_index, self._hi_index = bucket_index(lo), bucket_index(hi)
        if self._hi_index - self._lo_index + 1 > MAX_BUCKETS:
            raise ValueError(f"statherd: histogram {self.name!r} range {buckets!r} needs more than "
                             f"{MAX_BUCKETS} buckets\nhint: narrow the range")

    def _copy_options(self, parent):
        self._lo_index, self._hi_index = parent._lo_index, parent._hi_index

    def _value_area(self):
        self._min, self._max = inf, -inf  # a new record (also in a forked child) starts empty
        n = self._hi_index - self._lo_index + 1
        return struct.pack("<ddddd", 0.0, 0.0, inf, -inf, 0.0) + struct.pack(
            "<iI", self._lo_index, n) + bytes(8 * n)

    def _bind(self, bytes_view, u64_view, f64_view):
        self._q = u64_view
        self._d = f64_view
        s = self._seq_index
        self._zero_index = s + 5
        self._bucket_base = s + 1 + HIST_HEADER_WORDS - self._lo_index

    def observe(self, value):
        if value > ZERO_MAX:
            if value == inf:  # dropped: the server's sketch (and sum) must stay finite
                return
            i = ceil(log(value) / LN_GAMMA)
            if i < self._lo_index:
                i = self._lo_index
            elif i > self._hi_index:
                i = self._hi_index
            b = self._bucket_base + i
        elif value > -inf:  # false for NaN and -Inf too
            b = self._zero_index
        else:  # NaN or -Inf: dropped, a metrics library never raises into the request path
            return
        lock = self._lock
        lock.acquire()
        seq = self._seq + 2
        self._seq = seq
        q = self._q
        d = self._d
        s = self._seq_index
        try:
            q[s] = seq - 1
            d[s + 2] += value   # first: a value that float addition refuses changes nothing
            d[s + 1] += 1
            if value < self._min:
                self._min = d[s + 3] = value
            if value > self._max:
                self._max = d[s + 4] = value
            d[b] += 1
        finally:
            q[s] = seq
            lock.release()

    def time(self):
        """Observes the seconds spent in a `with` block or in each call of a decorated function."""
        if self._children is not None:
            raise ValueError(f"statherd: histogram {self.name!r} has labels\n"
                             f"hint: use {self.name}.labels(...).time()")
        return _Timer(self)


class Info(_Metric):
    """A text value (version, hostname): `set(text)`. Text longer than `capacity` UTF-8 bytes
    (default 256) is cut at a character boundary."""
    __slots__ = ("_capacity", "_bytes")
    _kind = _file.KIND_TEXT

    def _configure(self, capacity=TEXT_CAPACITY):
        if not 0 < capacity <= 1 << 20:
            raise ValueError(f"statherd: info {self.name!r} capacity must be 1 .. 1 MiB")
        self._capacity = (int(capacity) + 7) // 8 * 8

    def _copy_options(self, parent):
        self._capacity = parent._capacity

    def _value_area(self):
        return struct.pack("<II", self._capacity, 0) + bytes(self._capacity)

    def _bind(self, bytes_view, u64_view, f64_view):
        self._q = u64_view
        self._d = f64_view
        self._bytes = bytes_view

    def set(self, text):
        raw = str(text).encode("utf-8")
        if len(raw) > self._capacity:
            raw = raw[:self._capacity].decode("utf-8", "ignore").encode("utf-8")
        length = struct.pack("<I", len(raw))
        with self._lock:
            q = self._q
            s = self._seq_index
            at = (s + 1) * 8
            q[s] += 1
            try:
                self._bytes[at + 4:at + 8] = length
                self._bytes[at + 8:at + 8 + len(raw)] = raw
            finally:
                q[s] += 1

    def get(self):
        at = (self._seq_index + 1) * 8
        (length,) = struct.unpack("<I", self._bytes[at + 4:at + 8])
        return bytes(self._bytes[at + 8:at + 8 + length]).decode("utf-8")
