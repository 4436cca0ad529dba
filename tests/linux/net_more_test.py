#!/usr/bin/env python3
"""The second networking scenario of tests/integration/65-net.sh: IPv6 on user
networking, libslirp's own state across a snapshot, and passt on a `popek
switch` segment. Real components: popek guests (soft engine), HTTP servers on
127.0.0.1 and ::1, Debian's passt. Prints one "ok NAME" or "FAIL NAME: why"
line per check.
Usage: net_more_test.py POPEK IMAGES TMPDIR
"""
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netvm import Guest, check, snapshot_and_restore, stop_all  # noqa: E402

popek, images, tmp = sys.argv[1:4]
t0 = time.monotonic()


def free_port(family=socket.AF_INET, addr="127.0.0.1"):
    s = socket.socket(family)
    s.bind((addr, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def guest_sha(vm, url, limit=120):
    out = vm.run("rm -f /tmp/f; timeout 60 wget -q -O /tmp/f '%s' && sha256sum /tmp/f" % url, limit)
    return out.split()[0] if out else ""


class V6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def serve(server_class, addr, directory):
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=directory)  # noqa: E731
    httpd = server_class(addr, handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


# --- host-side components ---------------------------------------------------
www = os.path.join(tmp, "www-more")
os.makedirs(www, exist_ok=True)
with open(os.path.join(www, "blob"), "wb") as f:
    f.write(os.urandom(1 << 20))
blob_sha = hashlib.sha256(open(os.path.join(www, "blob"), "rb").read()).hexdigest()
http4 = serve(http.server.ThreadingHTTPServer, ("127.0.0.1", 0), www)
http6 = serve(V6Server, ("::1", 0), www)
port4, port6 = http4.server_address[1], http6.server_address[1]

vms, procs, dirs = [], [], []
try:
    hp4, hp6 = free_port(), free_port(socket.AF_INET6, "::1")
    u = Guest(popek, images, ["--net", "user,hostfwd=tcp::%d-:8080,hostfwd=tcp:[::1]:%d-:8080"
                              % (hp4, hp6)], "net6-u")
    vms.append(u)
    u.wait_shell(300)
    u.wait_lease()
    print("  guest at its shell with a lease after %.0f s" % (time.monotonic() - t0), flush=True)

    # --- the NIC's big MTU on user networking ---------------------------------
    def big_mtu():
        mtu = u.run("cat /sys/class/net/eth0/mtu")
        return mtu == "65520", "guest eth0 mtu %r" % mtu
    check("net user: the NIC offers libslirp's 65520-byte MTU and the guest takes it", big_mtu)

    # --- IPv6 on user networking --------------------------------------------
    def v6_address():
        addr = ""
        for _ in range(30):
            addr = u.run("ip -6 -o addr show dev eth0 scope global | awk '{print $4}'", 30)
            if addr.startswith("fd00::"):
                break
            time.sleep(1)
        route = u.run("ip -6 route show default")
        return addr.startswith("fd00::") and addr.endswith("/64") and "fe80::" in route, \
            "address %r, default route %r" % (addr, route)
    check("net user IPv6: the guest autoconfigures an fd00::/64 address from slirp's RA", v6_address)

    def v6_download():
        got = guest_sha(u, "http://[fd00::2]:%d/blob" % port6)
        return got == blob_sha, "guest sha256 %r, host %s" % (got, blob_sha)
    check("net user IPv6: 1 MiB download from the host's [::1] HTTP server via fd00::2", v6_download)

    def v6_hostfwd():
        u.run("mkdir -p /www6; echo served-over-v6 > /www6/index.html; httpd -p 8080 -h /www6")
        with urllib.request.urlopen("http://[::1]:%d/" % hp6, timeout=30) as r:
            body = r.read().decode().strip()
        with urllib.request.urlopen("http://127.0.0.1:%d/" % hp4, timeout=30) as r:
            body4 = r.read().decode().strip()
        return body == body4 == "served-over-v6", "over [::1] %r, over 127.0.0.1 %r" % (body, body4)
    check("net user IPv6: hostfwd=tcp:[::1]:PORT-:8080 reaches the guest's httpd", v6_hostfwd)

    # --- libslirp's state in a snapshot --------------------------------------
    # libslirp saves its DHCP lease table (and IP id); 10.0.2.15 is leased to
    # eth0's MAC. After the restore a client with another MAC must get the
    # next address: a slirp that lost its table would hand out 10.0.2.15 again.
    def slirp_state():
        r2 = snapshot_and_restore(popek, u, os.path.join(tmp, "net6.snap"), "net6-u2")
        vms.append(r2)
        got = guest_sha(r2, "http://10.0.2.2:%d/blob" % port4)
        out = r2.run("ip link set eth0 down; ip link set eth0 address 52:54:00:de:ad:01; "
                     "ip link set eth0 up; udhcpc -n -q -i eth0 -s /bin/true 2>&1 | grep -o 'lease of [0-9.]*'",
                     90)
        return got == blob_sha and out == "lease of 10.0.2.16", \
            "download after restore: %r; second MAC's lease: %r" % (got == blob_sha, out)
    check("net user snapshot: libslirp's lease table survives a restore (a new MAC gets 10.0.2.16)",
          slirp_state)

    # --- passt on a popek switch segment -------------------------------------
    # passt (as root it drops to nobody: its socket's directory must let
    # nobody create it) listens; `popek switch --connect` makes it a port.
    def passt_on_switch():
        if not shutil.which("passt"):
            return False, "passt is not installed (scripts/install-deps.sh)"
        pdir = tempfile.mkdtemp(prefix="popek-passt-", dir="/tmp")  # TMPDIR may be closed to nobody
        dirs.append(pdir)
        os.chmod(pdir, 0o777)
        psock, ssock = os.path.join(pdir, "passt.sock"), os.path.join(tmp, "passt-lan.sock")
        # -m 1500: the NIC on a switch takes Ethernet-sized frames (no TSO there).
        passt = subprocess.Popen(["passt", "-f", "-q", "-s", psock, "-m", "1500"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(passt)
        for _ in range(50):
            if os.path.exists(psock):
                break
            time.sleep(0.1)
        else:
            return False, "passt did not create %s" % psock
        sw = subprocess.Popen([popek, "switch", ssock, "--connect", psock], stderr=subprocess.PIPE)
        procs.append(sw)
        for _ in range(50):
            if os.path.exists(ssock) or sw.poll() is not None:
                break
            time.sleep(0.1)
        if sw.poll() is not None:
            return False, "switch: " + sw.stderr.read().decode()
        p = Guest(popek, images, ["--net", "socket=" + ssock], "net6-passt")
        vms.append(p)
        p.wait_shell(300)
        addr = p.wait_lease()
        gw = p.run("ip route | awk '/^default/ {print $3}'")
        # passt maps its gateway address to the host's loopback.
        got = guest_sha(p, "http://%s:%d/blob" % (gw, port4))
        return got == blob_sha, "lease %r, gateway %r, guest sha256 %r, host %s" % (addr, gw, got, blob_sha)
    check("net passt: a guest on a popek switch with passt connected gets passt's DHCP lease "
          "and downloads from a host HTTP server through it", passt_on_switch)

finally:
    stop_all(vms)
    for pr in procs:
        pr.terminate()
        pr.wait()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    http4.shutdown()
    http6.shutdown()
    print("  scenario took %.0f s" % (time.monotonic() - t0), flush=True)
