"""A Linux guest (soft engine) on a `popek switch`, with a static IPv4 address it has
used, is migrated to a popek receive on the same switch; a peer on the switch must see
the gratuitous ARP for that address from the guest's MAC after the move, and the
guest must answer the peer's ARP from there. For tests/integration/67-migrate.sh.
Usage: migrate_net.py POPEK IMAGES TMPDIR
"""
import os
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netvm import Guest, check, stop_all  # noqa: E402

popek, images, tmp = sys.argv[1:4]
MIGRATE_ARGS = sys.argv[4:]  # e.g. --postcopy
t0 = time.monotonic()
MAC = bytes.fromhex("525400127701")
IP = bytes([10, 77, 0, 5])
PEER_MAC = bytes.fromhex("525400127702")
PEER_IP = bytes([10, 77, 0, 1])
sw_path = os.path.join(tmp, "garp-sw.sock")
switch = subprocess.Popen([popek, "switch", sw_path], stderr=subprocess.PIPE)
for _ in range(100):
    if os.path.exists(sw_path):
        break
    time.sleep(0.05)


class Peer:
    """A port of the switch that keeps every frame it gets (QEMU stream framing)."""

    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(sw_path)
        self.frames, self.lock = [], threading.Lock()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        buf = b""
        while True:
            try:
                d = self.s.recv(65536)
            except OSError:
                return
            if not d:
                return
            buf += d
            while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                n = struct.unpack(">I", buf[:4])[0]
                with self.lock:
                    self.frames.append(buf[4:4 + n])
                buf = buf[4 + n:]

    def arps(self, since=0):
        """(op, sender MAC, sender IP, target IP) of the ARP frames from index since."""
        with self.lock:
            got = self.frames[since:]
        return [(struct.unpack(">H", f[20:22])[0], f[22:28], f[28:32], f[38:42])
                for f in got if len(f) >= 42 and f[12:14] == b"\x08\x06"]

    def ask(self):
        """Broadcast 'who has IP' from the peer."""
        f = (b"\xff" * 6 + PEER_MAC + b"\x08\x06" + bytes.fromhex("000108000604") + b"\x00\x01"
             + PEER_MAC + PEER_IP + b"\x00" * 6 + IP)
        f = f.ljust(60, b"\x00")
        self.s.sendall(struct.pack(">I", len(f)) + f)


vms = []
try:
    peer = Peer()
    spec = "socket=%s,mac=%s" % (sw_path, ":".join("%02x" % b for b in MAC))
    src = Guest(popek, images, ["--net", spec], "mig-garp")
    vms.append(src)
    src.wait_shell()
    # udhcpc finds no server on this switch; the address is set by hand and used once.
    src.run("ip addr add 10.77.0.5/24 dev eth0; ip link set eth0 up; "
            "ping -c 1 -W 1 10.77.0.1 >/dev/null 2>&1; true", 30)
    sock = os.path.join(tmp, "garp-mig.sock")
    dst = Guest(None, None, [], "mig-garp-dst",
                argv=[popek, "receive", "--listen", "unix:" + sock, "--name", "mig-garp-dst"])
    vms.append(dst)
    while not os.path.exists(sock) and dst.proc.poll() is None:
        time.sleep(0.05)
    mark = len(peer.frames)
    mig = subprocess.run([popek, "migrate", "mig-garp", "unix:" + sock] + MIGRATE_ARGS, capture_output=True,
                         text=True, timeout=300)
    src.proc.wait(60)

    def announced():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            garp = [a for a in peer.arps(mark) if a == (1, MAC, IP, IP)]
            if garp:
                return True, ""
            time.sleep(0.1)
        return False, "migrate rc %d (%s); ARP frames the peer saw after the move: %r" % (
            mig.returncode, mig.stderr.strip()[-300:], peer.arps(mark))
    check("migrate: a peer on the switch sees the guest's gratuitous ARP for 10.77.0.5 "
          "from its MAC after the move", announced)

    def answers():
        asked = len(peer.frames)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            peer.ask()
            time.sleep(1)
            if (2, MAC, IP, PEER_IP) in peer.arps(asked):
                return dst.run("echo still here") == "still here", "the shell did not answer"
        return False, "no ARP reply from the destination: %r" % peer.arps(asked)
    check("migrate: the guest answers the peer's ARP from the destination", answers)
    dst.poweroff()
finally:
    stop_all(vms)
    switch.terminate()
    switch.wait()
print("scenario took %.1f s" % (time.monotonic() - t0))
