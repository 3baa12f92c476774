#!/usr/bin/python3
"""Reference reader for the agent benchmark: reads mmstats v1 files the way the original
mmstats reader (Python, `slurpstats`) does — open, mmap, walk the fields with struct, pick the
readable buffer — and prints one line per field. The original is Python 2 only and cannot run on
this machine, so this stdlib-only Python 3 reader stands in for it; it does the same work per
field (one struct unpack per header item and value) and no more.

Usage: mmstats_reference_reader.py GLOB  (prints "path label value" lines to stdout)
"""
import glob
import mmap
import struct
import sys

_U16 = struct.Struct("=H")
_U8 = struct.Struct("=B")


def read_file(path):
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    try:
        if mm[0] != 1:
            raise ValueError("unknown version")
        pos = 1
        fields = []
        while True:
            (label_len,) = _U16.unpack_from(mm, pos)
            pos += 2
            if label_len == 0:
                break
            label = mm[pos:pos + label_len].decode()
            pos += label_len
            (type_len,) = _U16.unpack_from(mm, pos)
            pos += 2
            fmt = mm[pos:pos + type_len].decode()
            pos += type_len
            (write_buffer,) = _U8.unpack_from(mm, pos)
            pos += 1
            st = struct.Struct("=" + fmt)
            if write_buffer == 0xFF:
                (value,) = st.unpack_from(mm, pos)
                pos += st.size
            else:
                (value,) = st.unpack_from(mm, pos + st.size * (write_buffer ^ 1))
                pos += 2 * st.size
            fields.append((label, value))
        return fields
    finally:
        mm.close()


def main():
    out = []
    for path in sorted(glob.glob(sys.argv[1])):
        try:
            for label, value in read_file(path):
                out.append("%s %s %r" % (path, label, value))
        except Exception as e:  # noqa: BLE001 - a bad file must not stop the others
            sys.stderr.write("%s: %s\n" % (path, e))
    sys.stdout.write("\n".join(out))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
