#!/usr/bin/env python3
"""Make broken variants of a good ELF kernel for the loader tests.

overlap: the second PT_LOAD is moved onto the first one.
high:    the first PT_LOAD is moved to 3 GiB - 1 MiB (beyond a small guest's RAM).
bios:    the first PT_LOAD is moved into the reserved BIOS area (0xc1000, where
         popek's boot structures are).
"""
import struct
import sys

PT_LOAD = 1


def phdrs(data):
    cls = data[4]
    if cls == 2:
        phoff, = struct.unpack_from("<Q", data, 32)
        phentsize, phnum = struct.unpack_from("<HH", data, 54)
        fmt, paddr_at = "<IIQQQQQQ", 24
    else:
        phoff, = struct.unpack_from("<I", data, 28)
        phentsize, phnum = struct.unpack_from("<HH", data, 42)
        fmt, paddr_at = "<IIIIIIII", 12
    out = []
    for i in range(phnum):
        off = phoff + i * phentsize
        if struct.unpack_from("<I", data, off)[0] == PT_LOAD:
            out.append(off)
    return out, cls, paddr_at


def set_addr(data, off, cls, paddr_at, addr):
    if cls == 2:
        struct.pack_into("<QQ", data, off + 16, addr, addr)
    else:
        struct.pack_into("<II", data, off + 8, addr, addr)


def get_paddr(data, off, cls, paddr_at):
    return struct.unpack_from("<Q" if cls == 2 else "<I", data, off + paddr_at)[0]


def main():
    mode, src, dst = sys.argv[1:4]
    data = bytearray(open(src, "rb").read())
    loads, cls, paddr_at = phdrs(data)
    if mode == "overlap":
        if len(loads) < 2:
            sys.exit("need two PT_LOAD segments")
        set_addr(data, loads[1], cls, paddr_at, get_paddr(data, loads[0], cls, paddr_at))
    elif mode == "high":
        set_addr(data, loads[0], cls, paddr_at, 0xBFF00000)
    elif mode == "bios":
        set_addr(data, loads[0], cls, paddr_at, 0xC1000)
    open(dst, "wb").write(data)


main()
