#!/usr/bin/python3
"""A stdlib-only writer of mmstats v1 files (the format of the 2012 `mmstats` library).

Used by statherd's tests and demo to produce the files statherd-agent reads. It writes the same
bytes the original library writes (checked against mmstats 0.8.0's fields.py / models.py):

    byte 0            version, always 1
    then each field, back to back, unaligned, native byte order:
      u16 label_len, label (UTF-8), u16 type_len, type (a Python struct code: Q d i I h H b ? f q
      or "Ns" for a fixed-size string), u8 write_buffer, then
        write_buffer == 255: one value (unbuffered: ByteField, BoolField, StringField, Static*)
        write_buffer in {0,1}: two values; the writer writes values[write_buffer] and then flips
                               write_buffer, so readers read values[write_buffer ^ 1].
    a label_len of 0 (the zero fill of the page-rounded file) or the end of the file ends the list.

No memory barrier: a reader may see a half-written value and must re-read (statherd does).

Library use (mirrors the original API):

    class MyStats(MmStats):
        requests = CounterField(label="requests.count")
        queue = UIntField(label="queue.depth")
    stats = MyStats()            # $MMSTATS_PATH or $TMPDIR/{CMD}-{PID}-{TID}.mmstats
    stats.requests.incr()
    stats.queue = 3

CLI use: see `mmstats_writer.py --help`.
"""

import argparse
import json
import math
import mmap
import os
import signal
import struct
import sys
import tempfile
import threading
import time

VERSION = 1
WRITE_BUFFER_UNUSED = 255
DEFAULT_STRING_SIZE = 255
DEFAULT_PATH = os.environ.get("MMSTATS_PATH", tempfile.gettempdir())
DEFAULT_FILENAME = os.environ.get("MMSTATS_FILES", "{CMD}-{PID}-{TID}.mmstats")


def expand_filename(path=None, filename=None, cmd=None):
    """The file path for this process and thread ({CMD}, {PID}, {TID} substituted)."""
    subs = {
        "CMD": cmd if cmd is not None else os.path.basename(sys.argv[0]),
        "PID": os.getpid(),
        "TID": threading.get_native_id(),
    }
    path = (DEFAULT_PATH if path is None else path).format(**subs)
    filename = (DEFAULT_FILENAME if filename is None else filename).format(**subs)
    return os.path.join(path, filename)


class Field:
    """A field declaration; MmStats instances keep the per-file state in a _Slot."""

    code = None          # struct code written as the type signature
    buffered = True
    initial = 0
    label = None

    def __init__(self, label=None):
        if label is not None:
            self.label = label

    @property
    def type_signature(self):
        return self.code

    def value_size(self):
        return struct.calcsize(self.type_signature)

    def encode(self, value):
        return struct.pack(self.type_signature, value)

    def internal(self, slot):
        return None

    def __set_name__(self, owner, name):
        self.key = name


class _Slot:
    """One field's place in the mmap: offsets of its write_buffer byte and values."""

    def __init__(self, stats, field, label, offset):
        self.mm = stats._mm
        self.field = field
        self.label = label.encode("utf-8")
        sig = field.type_signature.encode("ascii")
        self.size = field.value_size()
        head = struct.pack("H", len(self.label)) + self.label + struct.pack("H", len(sig)) + sig
        self.wb_offset = offset + len(head)
        self.values_offset = self.wb_offset + 1
        nbuf = 2 if field.buffered else 1
        self.end = self.values_offset + nbuf * self.size
        self.mm[offset:self.wb_offset] = head
        self.mm[self.wb_offset] = 0 if field.buffered else WRITE_BUFFER_UNUSED
        zero = field.encode(field.initial)
        self.mm[self.values_offset:self.end] = zero * nbuf

    @staticmethod
    def size_of(field, label):
        nbuf = 2 if field.buffered else 1
        return 2 + len(label.encode("utf-8")) + 2 + len(field.type_signature) + 1 + nbuf * field.value_size()

    def get(self):
        if self.field.buffered:
            off = self.values_offset + self.size * (self.mm[self.wb_offset] ^ 1)
        else:
            off = self.values_offset
        return struct.unpack_from(self.field.type_signature, self.mm, off)[0]

    def set(self, value):
        data = self.field.encode(value)
        if self.field.buffered:
            wb = self.mm[self.wb_offset]
            off = self.values_offset + self.size * wb
            self.mm[off:off + self.size] = data       # write the write buffer ...
            self.mm[self.wb_offset] = wb ^ 1          # ... then flip it to readable
        else:
            self.mm[self.values_offset:self.values_offset + self.size] = data


class _PlainField(Field):
    """Assign and read the value directly: `stats.x = 3`."""

    def __get__(self, inst, owner):
        if inst is None:
            return self
        return inst._slots[self.key].get()

    def __set__(self, inst, value):
        inst._slots[self.key].set(value)


class UInt64Field(_PlainField):
    code = "Q"


class Int64Field(_PlainField):      # not in the original; same bytes a 'q' field would have
    code = "q"


class UIntField(_PlainField):
    code = "I"


class IntField(_PlainField):
    code = "i"


class ShortField(_PlainField):
    code = "h"


class UShortField(_PlainField):
    code = "H"


class FloatField(_PlainField):
    code = "f"


class DoubleField(_PlainField):
    code = "d"


class ByteField(_PlainField):
    code = "b"
    buffered = False


class UByteField(_PlainField):      # not in the original; an unbuffered 'B'
    code = "B"
    buffered = False


# The brief's names for the same fields.
Int8Field, UInt8Field, Int16Field, UInt16Field = ByteField, UByteField, ShortField, UShortField
Int32Field, UInt32Field = IntField, UIntField


class BoolField(_PlainField):
    code = "?"
    buffered = False

    def __init__(self, initial=False, **kw):
        super().__init__(**kw)
        self.initial = bool(initial)

    def encode(self, value):
        return b"\x01" if value else b"\x00"


class StringField(_PlainField):
    """Unbuffered fixed-size UTF-8 string, NUL padded, trimmed to whole characters."""

    buffered = False
    initial = ""

    def __init__(self, size=DEFAULT_STRING_SIZE, **kw):
        super().__init__(**kw)
        self.size = size

    @property
    def type_signature(self):
        return "%ds" % self.size

    def encode(self, value):
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if len(raw) > self.size:
            raw = raw[:self.size].decode("utf-8", "ignore").encode("utf-8")
        return raw.ljust(self.size, b"\x00")

    def __get__(self, inst, owner):
        if inst is None:
            return self
        return inst._slots[self.key].get().split(b"\x00", 1)[0].decode("utf-8", "ignore")


class _StaticField(Field):
    """Unbuffered, written once at creation; `value` may be a callable."""

    buffered = False

    def __init__(self, label=None, value=None):
        super().__init__(label=label)
        if value is None:
            raise ValueError("a static field needs a value")
        self.value = value

    def __get__(self, inst, owner):
        if inst is None:
            return self
        return inst._slots[self.key].get()


class StaticUIntField(_StaticField):
    code = "I"


class StaticInt64Field(_StaticField):
    code = "q"


class StaticUInt64Field(_StaticField):
    code = "Q"


class StaticFloatField(_StaticField):
    code = "f"


class StaticDoubleField(_StaticField):
    code = "d"


class StaticTextField(_StaticField):
    initial = ""

    @property
    def type_signature(self):
        return "256s"

    encode = StringField.encode
    size = 256


class _ComplexField(Field):
    """Buffered fields with behaviour: `stats.x` returns an object with methods."""

    def __get__(self, inst, owner):
        if inst is None:
            return self
        return inst._internals[self.key]


class _Value:
    def __init__(self, slot):
        self._slot = slot

    @property
    def value(self):
        return self._slot.get()

    @value.setter
    def value(self, v):
        self._slot.set(v)


class CounterField(_ComplexField):
    code = "Q"

    class Internal(_Value):
        def incr(self, amount=1):
            self._slot.set(self._slot.get() + amount)

    def internal(self, slot):
        return self.Internal(slot)


class AverageField(_ComplexField):
    code = "d"

    class Internal(_Value):
        def __init__(self, slot):
            super().__init__(slot)
            self._count, self._total = 0, 0.0

        def add(self, value):
            self._count += 1
            self._total += value
            self._slot.set(self._total / self._count)

    def internal(self, slot):
        return self.Internal(slot)


class MovingAverageField(_ComplexField):
    code = "d"

    def __init__(self, size=100, **kw):
        super().__init__(**kw)
        self.size = size

    class Internal(_Value):
        def __init__(self, slot, size):
            super().__init__(slot)
            self._window, self._idx, self._full = [0.0] * size, 0, False

        def add(self, value):
            self._window[self._idx] = value
            n = len(self._window) if self._full else self._idx + 1
            self._slot.set(math.fsum(self._window) / n)
            self._idx = (self._idx + 1) % len(self._window)
            self._full = self._full or self._idx == 0

    def internal(self, slot):
        return self.Internal(slot, self.size)


class TimerField(MovingAverageField):
    """Moving average of elapsed seconds; `with stats.timer:` or start()/stop()."""

    def __init__(self, timer=time.time, **kw):
        super().__init__(**kw)
        self.timer = timer

    class Internal(MovingAverageField.Internal):
        def __init__(self, slot, size, timer):
            super().__init__(slot, size)
            self._timer, self._start, self.last = timer, None, 0.0

        def start(self):
            self._start = self._timer()

        def stop(self):
            self.last = self._timer() - self._start
            self.add(self.last)

        def __enter__(self):
            self.start()
            return self

        def __exit__(self, *exc):
            self.stop()

    def internal(self, slot):
        return self.Internal(slot, self.size, self.timer)


class BaseMmStats:
    """A stats file: subclass, declare fields as class attributes, instantiate."""

    def __init__(self, path=None, filename=None, label_prefix="", cmd=None):
        self.filename = expand_filename(path, filename, cmd)
        declared = []
        for cls in type(self).__mro__:
            for name, attr in vars(cls).items():
                if isinstance(attr, Field) and name not in [n for n, _ in declared]:
                    declared.append((name, attr))
        labels = [(name, f, label_prefix + (f.label or name)) for name, f in declared]
        total = 1 + sum(_Slot.size_of(f, label) for _, f, label in labels)
        page = mmap.PAGESIZE
        self.size = max(page, -(-total // page) * page)
        self._fd = os.open(self.filename, os.O_CREAT | os.O_TRUNC | os.O_RDWR, 0o644)
        os.ftruncate(self._fd, self.size)
        self._mm = mmap.mmap(self._fd, self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._mm[0] = VERSION
        self._slots, self._internals = {}, {}
        offset = 1
        for name, f, label in labels:
            slot = _Slot(self, f, label, offset)
            offset = slot.end
            self._slots[name] = slot
            self._internals[name] = f.internal(slot)
            if isinstance(f, _StaticField):
                slot.set(f.value() if callable(f.value) else f.value)
            elif f.initial:
                slot.set(f.initial)

    def flush(self):
        self._mm.flush()

    def remove(self):
        """Unmap and delete the file; the object is unusable afterwards."""
        if self._mm is None:
            return
        self._mm.close()
        os.close(self._fd)
        self._mm = None
        try:
            os.remove(self.filename)
        except OSError:
            pass


class MmStats(BaseMmStats):
    """BaseMmStats plus the original's system fields."""

    pid = StaticUIntField(label="sys.pid", value=os.getpid)
    tid = StaticInt64Field(label="sys.tid", value=threading.get_native_id)
    uid = StaticUInt64Field(label="sys.uid", value=os.getuid)
    gid = StaticUInt64Field(label="sys.gid", value=os.getgid)
    python_version = StaticTextField(label="org.python.version",
                                     value=lambda: sys.version.replace("\n", ""))
    created = StaticDoubleField(label="sys.created", value=time.time)


if __name__ == "__main__":
    # The command-line mode lives next door (mmstats_writer_cli.py) to keep this file short.
    sys.modules.setdefault("mmstats_writer", sys.modules[__name__])
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from mmstats_writer_cli import main
    sys.exit(main(sys.argv[1:]))
