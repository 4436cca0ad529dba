#!/usr/bin/env python3
"""The virtio-vsock scenario of tests/integration/69-vsock.sh: a default-image
guest (soft engine, jailed) with --vsock. A host program reaches a guest
listener through the Unix socket (CONNECT PORT), 1 MiB each way; the guest
reaches host listeners at PATH_PORT; refused connections both ways; then a
snapshot and a restore: the old stream is reset in the guest, new ones work.
Prints one "ok NAME" or "FAIL NAME: why" per check.
Usage: vsock_test.py POPEK IMAGES TMPDIR
"""
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netvm import Guest, GuestError, check, report  # noqa: E402

popek, images, tmp = sys.argv[1:4]
t0 = time.monotonic()
os.makedirs(tmp, exist_ok=True)
uds = os.path.join(tmp, "v.sock")


def sha(b):
    return hashlib.sha256(b).hexdigest()


def readline(s):
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)  # one byte at a time: the stream follows the line
        if not b:
            break
        line += b
    return line.decode(errors="replace")


def host_connect(port, tries=20):
    """CONNECT to a guest port; retries while the guest listener starts."""
    for _ in range(tries):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(uds)
        s.sendall(b"CONNECT %d\n" % port)
        line = readline(s)
        if line.startswith("OK "):
            return s, line
        s.close()
        time.sleep(1)
    return None, line


def exchange(s, data):
    """Send data (then shut our side) while reading the peer's until EOF."""
    got = []

    def rx():
        while True:
            b = s.recv(65536)
            if not b:
                break
            got.append(b)
    t = threading.Thread(target=rx)
    t.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    t.join(120)
    return b"".join(got)


def host_listener(port, reply):
    """Accept one connection on PATH_PORT: read all, answer reply(data)."""
    path = "%s_%d" % (uds, port)
    if os.path.exists(path):
        os.unlink(path)
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(1)
    ls.settimeout(120)
    result = {}

    def serve():
        try:
            c, _ = ls.accept()
            c.settimeout(60)
            data = b""
            while True:
                b = c.recv(65536)
                if not b:
                    break
                data += b
            result["data"] = data
            c.sendall(reply(data))
            c.close()
        except OSError as e:
            result["error"] = str(e)
        ls.close()
    t = threading.Thread(target=serve)
    t.start()
    return t, result


vm = Guest(popek, images, ["--net", "none", "--vsock", "cid=7,uds=" + uds], "vsock-1")
vm2 = None
try:
    vm.wait_shell(300)

    def host_to_guest():
        g = vm.run("head -c 1048576 /dev/urandom >/tmp/g2h; sha256sum /tmp/g2h").split()[:1]
        vm.send("vsock-tool listen 5000 </tmp/g2h >/tmp/h2g &")
        s, line = host_connect(5000)
        if not s:
            return False, "no OK from CONNECT 5000: %r" % line
        blob = os.urandom(1 << 20)
        t = time.monotonic()
        back = exchange(s, blob)
        print("  1 MiB each way took %.1f s (soft engine; not asserted)" % (time.monotonic() - t),
              flush=True)
        s.close()
        got = vm.run("wait; sha256sum /tmp/h2g").split()[:1]
        ok = line.startswith("OK 1") and g == [sha(back)] and got == [sha(blob)]
        return ok, "line %r; guest→host %d bytes (%s vs %r); host→guest %r vs %s" % (
            line, len(back), sha(back), g, got, sha(blob))

    def guest_to_host():
        t, res = host_listener(6000, lambda d: b"host got " + sha(d).encode() + b"\n")
        out = vm.run("head -c 300000 /dev/urandom >/tmp/up; sha256sum /tmp/up; "
                     "vsock-tool connect 2 6000 </tmp/up")
        t.join(120)
        want = sha(res.get("data", b""))
        return ("host got " + want in out and out.split()[0] == want and
                len(res.get("data", b"")) == 300000), "guest %r; host %r" % (out, res)

    def guest_refused():
        out = vm.run("vsock-tool connect 2 6001; echo rc=$?")
        return "vsock-tool: connect: Connection reset by peer" in out and "rc=1" in out, out

    def answer(first):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(uds)
        s.sendall(first)
        line = readline(s)
        s.close()
        return line

    def host_refused():
        line, bad = answer(b"CONNECT 5999\n"), answer(b"HELLO there\n")
        return (line == "ERR connection refused by the guest\n" and
                bad == "ERR expected CONNECT PORT\n"), "%r / %r" % (line, bad)

    def snapshot_restore():
        global vm2
        vm.send("vsock-tool listen 5001 </dev/null >/tmp/old 2>/tmp/old.err &")
        s, line = host_connect(5001)
        if not s:
            return False, "no OK from CONNECT 5001: %r" % line
        s.sendall(b"before the snapshot\n")
        time.sleep(1)
        snap = os.path.join(tmp, "snap")
        r = subprocess.run([popek, "snapshot", "vsock-1", snap, "--stop"], capture_output=True,
                           text=True)
        if r.returncode != 0:
            return False, "snapshot: " + r.stderr
        stopped = vm.proc.wait(60) == 0  # and no sanitizer complained
        old_closed = s.recv(100) == b""  # popek is gone: EOF
        s.close()
        vm2 = Guest(None, images, [], "vsock-2", argv=[popek, "restore", snap, "--name", "vsock-2"])
        vm2.send("")
        vm2.wait_shell(120)
        # Linux closes reset streams: the reader gets ECONNRESET or ENOTCONN.
        old = vm2.run("wait; cat /tmp/old; cat /tmp/old.err")
        reset = "before the snapshot" in old and ("vsock-tool: receive: Connection reset" in old or
                                                  "vsock-tool: receive: Transport endpoint is not "
                                                  "connected" in old)
        vm2.send("echo after-restore | vsock-tool listen 5002 >/tmp/new &")
        s2, line2 = host_connect(5002)
        if not s2:
            return False, "after restore no OK from CONNECT 5002: %r (old: %r, stderr %s)" % (
                line2, old, vm2.stderr())
        back = exchange(s2, b"new stream\n")
        s2.close()
        new = vm2.run("wait; cat /tmp/new")
        t, res = host_listener(6002, lambda d: d[::-1])
        up = vm2.run("echo -n abc | vsock-tool connect 2 6002")
        t.join(60)
        ok = (stopped and old_closed and reset and back == b"after-restore\n" and new == "new stream" and
              up == "cba")
        return ok, "stopped %s (%s), old closed %s, guest's old stream %r; new: %r / %r; to " \
            "host: %r" % (stopped, vm.stderr()[-300:], old_closed, old, back, new, up)

    check("vsock: a host program reaches a guest listener, 1 MiB each way (sha256)",
          host_to_guest)
    check("vsock: the guest reaches a host listener at PATH_PORT (300 kB, sha256)", guest_to_host)
    check("vsock: a guest connect to a host port nobody listens on is reset", guest_refused)
    check("vsock: CONNECT to a guest port nobody listens on (or a bad line) gets an ERR line",
          host_refused)
    check("vsock: after snapshot and restore the old stream is reset, new ones work both ways",
          snapshot_restore)
    if vm2:
        rc = vm2.poweroff()
        report(rc == 0 and not os.path.exists(uds),
               "vsock: the restored VM powers off and removes its socket",
               "exit %d, %s exists: %s" % (rc, uds, os.path.exists(uds)))
except GuestError as e:
    report(False, "vsock: scenario", str(e)[-600:])
finally:
    vm.kill()
    if vm2:
        vm2.kill()
print("  scenario took %.0f s" % (time.monotonic() - t0), flush=True)
