"""A proxy between `popek migrate` and `popek receive` (unix sockets) that
passes the migration stream record by record (docs/migration.md), and the
"go" after END, for the migration tests.

usage: migrate_proxy.py LISTEN TARGET MODE
  cut:N                  drop both connections once N bytes of records came
  set:TYPE:AT:SIZE:VALUE in the first record of TYPE, write VALUE as SIZE
                         little-endian bytes at payload offset AT and fix its
                         checksum, so that only the destination's own check
                         can refuse it
Prints "listening" once it accepts; the destination's answers go back as
they come."""
import os
import socket
import sys
import threading
import zlib

listen, target, mode = sys.argv[1:4]
cut = int(mode[4:]) if mode.startswith("cut:") else None
edit = [int(x) for x in mode[4:].split(":")] if mode.startswith("set:") else None
if os.path.exists(listen):
    os.unlink(listen)
ls = socket.socket(socket.AF_UNIX)
ls.bind(listen)
ls.listen(1)
ls.settimeout(60)  # a migrate that never came must not hang the test
print("listening", flush=True)
c, _ = ls.accept()
up = socket.socket(socket.AF_UNIX)
up.connect(target)


def back():
    try:
        while d := up.recv(65536):
            c.sendall(d)
    except OSError:
        pass
    c.close()


threading.Thread(target=back, daemon=True).start()


def read(n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b


sent = 0
try:
    up.sendall(read(8))
    while cut is None or sent < cut:
        h = bytearray(read(16))
        body = bytearray(read(int.from_bytes(h[4:8], "little")))
        if edit and h[0] == edit[0]:
            t, at, size, value = edit
            body[at:at + size] = value.to_bytes(size, "little")
            h[12:16] = zlib.crc32(body).to_bytes(4, "little")
            edit = None
        up.sendall(bytes(h) + bytes(body))
        sent += len(h) + len(body)
        if h[0] == 5:  # END: the source's "go" follows, not a record
            up.sendall(read(3))
except (EOFError, OSError):
    pass
try:
    up.shutdown(socket.SHUT_RDWR)  # wakes back(), which closes the source's side
except OSError:
    pass
threading.Event().wait(3)
