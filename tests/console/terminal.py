#!/usr/bin/env python3
"""popek on a real terminal (a pty): raw mode, Ctrl-A h / Ctrl-A x, and the
terminal restored afterwards, also when popek is killed by SIGTERM.
Usage: terminal.py POPEK GUEST MODE   (MODE: quit | sigterm); prints one JSON line."""
import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time

popek, guest, mode = sys.argv[1:4]
master, slave = pty.openpty()
before = termios.tcgetattr(slave)
p = subprocess.Popen([popek, "run", "--engine", "kvm", "--kernel", guest, "--cmdline", "rounds=100000"],
                     stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
out = b""


def read_for(seconds, until=None):
    global out
    end = time.time() + seconds
    while time.time() < end and not (until and until in out):
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                out += os.read(master, 4096)
            except OSError:
                break


res = {}
read_for(20, b"round 1\r\n")
res["raw"] = not (termios.tcgetattr(slave)[3] & termios.ICANON)
if mode == "quit":
    os.write(master, b"\x01h")
    read_for(3, b"Ctrl-A x")
    res["help"] = b"Ctrl-A x  quit the VM" in out
    os.write(master, b"\x01x")
else:
    p.send_signal(signal.SIGTERM)
res["exit"] = p.wait(20)
read_for(0.5)
res["restored"] = termios.tcgetattr(slave) == before
res["tail"] = out[-200:].decode(errors="replace")
print(json.dumps(res))
