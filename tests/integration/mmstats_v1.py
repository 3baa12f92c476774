"""A minimal, independent mmstats v1 codec for the integration tests (stdlib only).

Layout (native byte order, fields back to back, unaligned):
  u8 version = 1
  per field: u16 label_len, label, u16 type_len, type (a struct format such as "Q", "d", "10s"),
             u8 write_buffer, then one value (write_buffer == 0xFF, unbuffered)
             or two value buffers (the readable one is write_buffer ^ 1)
  u16 0 ends the fields.

It writes static files with known values (for --once and bad-input tests) and reads writer files
to follow progress, independently of the code under test.
"""

import os
import struct

UNBUFFERED = 0xFF


def encode_field(label, fmt, value, buffered=True):
    label_b = label.encode()
    fmt_b = fmt.encode()
    out = struct.pack("=H", len(label_b)) + label_b + struct.pack("=H", len(fmt_b)) + fmt_b
    packed = struct.pack("=" + fmt, value)
    if buffered:
        # write_buffer = 1, so the readable buffer is 0; buffer 1 holds a stale value.
        stale = struct.pack("=" + fmt, type(value)()) if not isinstance(value, bytes) else b"\0" * len(packed)
        return out + bytes([1]) + packed + stale
    return out + bytes([UNBUFFERED]) + packed


def encode_file(fields, pad_to=4096):
    """fields: iterable of (label, fmt, value[, buffered])."""
    body = bytes([1])
    for field in fields:
        body += encode_field(*field)
    body += struct.pack("=H", 0)
    if len(body) < pad_to:
        body += b"\0" * (pad_to - len(body))
    return body


def write_file(path, fields):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(encode_file(fields))
    os.replace(tmp, path)


def decode(data):
    """{label: value} of an mmstats v1 image; raises ValueError on malformed input."""
    if not data or data[0] != 1:
        raise ValueError("not an mmstats v1 file")
    pos = 1
    fields = {}
    while True:
        if pos + 2 > len(data):
            raise ValueError("truncated before field label length")
        (label_len,) = struct.unpack_from("=H", data, pos)
        pos += 2
        if label_len == 0:
            return fields
        label = data[pos:pos + label_len].decode()
        pos += label_len
        (type_len,) = struct.unpack_from("=H", data, pos)
        pos += 2
        fmt = data[pos:pos + type_len].decode()
        pos += type_len
        size = struct.calcsize("=" + fmt)
        write_buffer = data[pos]
        pos += 1
        if write_buffer == UNBUFFERED:
            raw = data[pos:pos + size]
            pos += size
        else:
            readable = write_buffer ^ 1
            raw = data[pos + readable * size:pos + (readable + 1) * size]
            pos += 2 * size
        if len(raw) != size:
            raise ValueError(f"truncated value of {label}")
        (value,) = struct.unpack("=" + fmt, raw)
        if isinstance(value, bytes):
            value = value.rstrip(b"\0").decode(errors="replace")
        fields[label] = value


def read_file(path):
    with open(path, "rb") as f:
        return decode(f.read())
