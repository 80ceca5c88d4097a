#!/usr/bin/env python3
"""Write seeds for the `section` fuzz target from golden packages.

Each seed is the 14-byte parameter block the target expects (flags, minor,
strings length, strings count, heap size; see fuzz/src/lib.rs) followed by the
TOC or package-attributes section of a package. Only zlib and uncompressed
packages are used (Python's standard library has no zstd).

Usage: make_section_seeds.py OUT_DIR PACKAGE.hpkg...
"""
import os
import struct
import sys
import zlib

CHUNK = 65536


def heap_bytes(data):
    (_, hsize, _, _, _, comp, _, csize, usize) = struct.unpack(">4sHHQHHIQQ", data[:40])
    stored = data[hsize:hsize + csize]
    if comp == 0:
        return stored
    if comp != 1:
        return None
    chunks = (usize + CHUNK - 1) // CHUNK
    table_len = 2 * (chunks - 1)
    table = stored[csize - table_len:]
    sizes = [struct.unpack(">H", table[i:i + 2])[0] + 1 for i in range(0, table_len, 2)]
    sizes.append(csize - table_len - sum(sizes))
    out, pos = bytearray(), 0
    for i, s in enumerate(sizes):
        want = min(CHUNK, usize - i * CHUNK)
        raw = stored[pos:pos + s]
        out += raw if s == want else zlib.decompress(raw)
        pos += s
    return bytes(out)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for path in sys.argv[2:]:
        data = open(path, "rb").read()
        heap = heap_bytes(data)
        if heap is None:
            continue
        minor = struct.unpack(">H", data[16:18])[0]
        a_len, a_slen, a_cnt = struct.unpack(">III", data[40:52])
        t_len, t_slen, t_cnt = struct.unpack(">QQQ", data[56:80])
        attrs = heap[len(heap) - a_len:]
        toc = heap[len(heap) - a_len - t_len:len(heap) - a_len]
        name = os.path.basename(path).rsplit(".", 1)[0]
        hs = min(len(heap), 0xFFFFFFFF)
        for tag, flags, body, slen, cnt in (("toc", 0, toc, t_slen, t_cnt),
                                            ("attrs", 1, attrs, a_slen, a_cnt)):
            head = struct.pack(">BBIII", flags, minor, slen, cnt, hs)
            with open(os.path.join(out_dir, f"{name}.{tag}"), "wb") as f:
                f.write(head + body)


main()
