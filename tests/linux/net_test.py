#!/usr/bin/env python3
"""The networking scenario of tests/integration/65-net.sh, with real components:
a popek switch, four guests booted together (soft engine), a QEMU guest on
the same switch, an HTTP server and a DNS resolver on 127.0.0.1, a tap in a
network namespace. Prints one "ok NAME" or "FAIL NAME: why" line per check.
Usage: net_test.py POPEK IMAGES TMPDIR
"""
import hashlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netvm import Guest, GuestError, check, report, stop_all  # noqa: E402

popek, images, tmp = sys.argv[1:4]
t0 = time.monotonic()
ANSWER = "192.0.2.77"  # what the test resolver says for every name


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def dns_server(sock):
    """Answer every A query with ANSWER (enough for busybox nslookup)."""
    while True:
        try:
            q, addr = sock.recvfrom(512)
        except OSError:
            return
        if len(q) < 12:
            continue
        end = 12
        while end < len(q) and q[end]:
            end += q[end] + 1
        question = q[12:end + 5]
        qtype = struct.unpack(">H", q[end + 1:end + 3])[0] if end + 3 <= len(q) else 0
        an = 1 if qtype == 1 else 0
        hdr = q[:2] + struct.pack(">HHHHH", 0x8180, 1, an, 0, 0)
        rr = (b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(ANSWER)) if an else b""
        sock.sendto(hdr + question + rr, addr)


def http_get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def guest_sha(vm, url, limit=120):
    out = vm.run("rm -f /tmp/f; timeout 60 wget -q -O /tmp/f %s && sha256sum /tmp/f" % url, limit)
    return out.split()[0] if out else ""


# --- host-side components ---------------------------------------------------
www = os.path.join(tmp, "www")
os.makedirs(www, exist_ok=True)
with open(os.path.join(www, "blob"), "wb") as f:
    f.write(os.urandom(1 << 20))
blob_sha = sha(os.path.join(www, "blob"))
http_port = free_port()
httpd = subprocess.Popen([sys.executable, "-m", "http.server", str(http_port), "--bind", "127.0.0.1",
                          "--directory", www], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dns_ok = True
try:
    dns.bind(("127.0.0.1", 53))
    threading.Thread(target=dns_server, args=(dns,), daemon=True).start()
except OSError as e:
    dns_ok = False
    report(False, "net: test resolver on 127.0.0.1:53", str(e))

sw_path = os.path.join(tmp, "switch.sock")
switch = subprocess.Popen([popek, "switch", sw_path], stderr=subprocess.PIPE)
for _ in range(50):
    if os.path.exists(sw_path):
        break
    time.sleep(0.1)

ns = "popek-net-%d" % os.getpid()
tap = "ptap%d" % (os.getpid() % 10000)
netns_ok = subprocess.run(
    "ip netns add {ns} && ip netns exec {ns} ip tuntap add dev {tap} mode tap && "
    "ip netns exec {ns} ip addr add 10.2.0.1/24 dev {tap} && "
    "ip netns exec {ns} ip link set {tap} up && ip netns exec {ns} ip link set lo up".format(ns=ns, tap=tap),
    shell=True, capture_output=True, text=True)
if netns_ok.returncode:
    report(False, "net: tap in a network namespace", "cannot set it up: " + netns_ok.stderr.strip())
ns_http = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "http.server", "8090",
                            "--bind", "10.2.0.1", "--directory", www],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

hp_u, hp_a = free_port(), free_port()
pcap = os.path.join(tmp, "u.pcap")
vms = []
try:
    # U sees a resolv.conf that names the test resolver (its own mount namespace).
    resolv = os.path.join(tmp, "resolv.conf")
    open(resolv, "w").write("nameserver 127.0.0.1\n")
    in_ns = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolv]
    u = Guest(popek, images, ["--net", "user,hostfwd=tcp::%d-:8080,capture=%s" % (hp_u, pcap)], "net-u",
              prefix=in_ns)
    a = Guest(popek, images, ["--net", "socket=" + sw_path,
                              "--net", "user,restrict=on,hostfwd=tcp::%d-:8081" % hp_a], "net-a")
    b = Guest(popek, images, ["--net", "socket=" + sw_path, "--net", "tap=" + tap], "net-b",
              argv=None if netns_ok.returncode else
              ["ip", "netns", "exec", ns, popek, "run", "--engine", "soft", "--mem", "256M",
               "--name", "net-b", "--kernel", os.path.join(images, "vmlinux"),
               "--initrd", os.path.join(images, "initramfs.cpio.gz"),
               "--cmdline", "console=ttyS0 panic=-1 quiet cryptomgr.notests",
               "--net", "socket=" + sw_path, "--net", "tap=" + tap])
    # no_timer_check: on a loaded host TCG can fail Linux's IO-APIC timer check.
    q = Guest(None, images, [], "qemu", argv=[
        "qemu-system-x86_64", "-accel", "tcg", "-m", "256M", "-kernel", os.path.join(images, "vmlinuz"),
        "-initrd", os.path.join(images, "initramfs.cpio.gz"),
        "-append", "console=ttyS0 panic=-1 quiet cryptomgr.notests no_timer_check", "-display", "none",
        "-serial", "stdio", "-monitor", "none", "-no-reboot",
        "-netdev", "stream,id=n0,server=off,addr.type=unix,addr.path=" + sw_path,
        "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:aa:bb:cc"])
    vms = [u, a, b, q]
    for vm in vms:
        vm.wait_shell(300)
    print("  four guests at their shells after %.0f s" % (time.monotonic() - t0), flush=True)

    # user networking: DHCP, DNS, download, hostfwd
    def lease():
        addr = u.wait_lease()
        route = u.run("ip route | grep default")
        return addr == "10.0.2.15/24" and "10.0.2.2" in route, "address %r, route %r" % (addr, route)
    check("net user: DHCP lease 10.0.2.15 with a default route via 10.0.2.2", lease)

    def resolve():
        out = u.run("nslookup www.example.test 10.0.2.3", 60)
        return ANSWER in out, out
    if dns_ok:
        check("net user: name resolved through slirp's DNS (test resolver on 127.0.0.1)", resolve)

    def download():
        got = guest_sha(u, "http://10.0.2.2:%d/blob" % http_port)
        return got == blob_sha, "guest sha256 %r, host %s" % (got, blob_sha)
    check("net user: 1 MiB download from the host's 127.0.0.1 HTTP server, hash matches", download)

    def hostfwd(vm, port, gport, token):
        vm.run("mkdir -p /www%d; echo %s > /www%d/index.html; httpd -p %d -h /www%d"
               % (gport, token, gport, gport, gport))
        body = http_get("http://127.0.0.1:%d/" % port).decode().strip()
        return body == token, "host got %r" % body
    check("net user: hostfwd from 127.0.0.1 to the guest's httpd",
          lambda: hostfwd(u, hp_u, 8080, "served-by-u"))

    # the switch: popek A, popek B, QEMU Q
    for vm, ip in ((a, 1), (b, 2), (q, 3)):
        vm.run("ip addr add 10.1.0.%d/24 dev eth0; ip link set eth0 up" % ip)

    def exchange():
        a.send("echo from-a | nc -l -p 7000 > /tmp/got &")
        time.sleep(1)
        got_b = b.run("echo from-b | nc -w 5 10.1.0.1 7000", 60)
        got_a = a.run("sleep 1; cat /tmp/got")
        return got_b == "from-a" and got_a == "from-b", "b got %r, a got %r" % (got_b, got_a)
    check("net switch: two popek VMs exchange data both ways", exchange)

    def qemu_reaches():
        out = q.run("ping -c 2 -W 5 10.1.0.1 >/dev/null && ping -c 2 -W 5 10.1.0.2 >/dev/null && echo reached", 60)
        a.send("echo to-qemu | nc -l -p 7001 &")
        time.sleep(1)
        got = q.run("nc -w 5 10.1.0.1 7001 </dev/null", 60)
        return out == "reached" and got == "to-qemu", "ping: %r, nc: %r" % (out, got)
    check("net switch: a QEMU VM on the same switch reaches both popek VMs", qemu_reaches)

    # restrict=on on A's second NIC
    def restricted():
        a.run("ip link set eth1 up; ip addr add 10.0.2.15/24 dev eth1; ip route add default via 10.0.2.2 dev eth1")
        out = a.run("timeout 10 wget -q -O /dev/null http://10.0.2.2:%d/blob >/dev/null 2>&1 && echo reached || echo blocked"
                    % http_port, 60)
        ok, why = hostfwd(a, hp_a, 8081, "served-by-a")
        return out == "blocked" and ok, "outbound: %r; hostfwd: %s" % (out, why)
    check("net user restrict=on: outbound blocked, hostfwd still works", restricted)

    # tap in a network namespace
    def tap_both_ways():
        b.run("ip link set eth1 up; ip addr add 10.2.0.2/24 dev eth1")
        got = guest_sha(b, "http://10.2.0.1:8090/blob")
        b.run("mkdir -p /wt; echo via-tap > /wt/index.html; httpd -p 8082 -h /wt")
        back = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c",
                               "import urllib.request;print(urllib.request.urlopen("
                               "'http://10.2.0.2:8082/',timeout=30).read().decode().strip())"],
                              capture_output=True, text=True, timeout=60).stdout.strip()
        return got == blob_sha and back == "via-tap", "guest sha %r; host got %r" % (got, back)
    if not netns_ok.returncode:
        check("net tap: in a test network namespace, traffic both ways (1 MiB in, HTTP out)",
              tap_both_ways)

    def capture():
        data = open(pcap, "rb").read()
        magic, = struct.unpack("<I", data[:4])
        off, n, dhcp = 24, 0, False
        while off + 16 <= len(data):
            _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
            frame = data[off + 16:off + 16 + incl]
            dhcp |= len(frame) > 37 and frame[12:14] == b"\x08\x00" and frame[23] == 17 and \
                frame[36:38] == b"\x00\x43"
            off += 16 + incl
            n += 1
        return magic == 0xa1b2c3d4 and n > 10 and dhcp, "magic %x, %d frames, DHCP seen %s" % (magic, n, dhcp)
    check("net capture=: a pcap file with the guest's frames (DHCP among them)", capture)

    # snapshot U (httpd listening), restore, network again
    def snapshot_restore():
        snap = os.path.join(tmp, "u.snap")
        r = subprocess.run([popek, "snapshot", "net-u", snap, "--stop"], capture_output=True, text=True)
        if r.returncode:
            return False, "snapshot: " + r.stderr
        u.proc.wait(60)
        r2 = Guest(None, images, [], "net-u2", argv=in_ns + [popek, "restore", snap, "--name", "net-u2"])
        vms.append(r2)
        r2.send("")
        r2.read_until(b"popek:/# ", 60)
        got = guest_sha(r2, "http://10.0.2.2:%d/blob" % http_port)
        body = http_get("http://127.0.0.1:%d/" % hp_u).decode().strip()
        return got == blob_sha and body == "served-by-u", "after restore: sha %r, hostfwd %r" % (got, body)
    check("net user: snapshot with the guest's server listening, restore: download and hostfwd work",
          snapshot_restore)

finally:
    stop_all(vms)
    switch.terminate()
    switch.wait()
    httpd.terminate()
    ns_http.terminate()
    ns_http.wait()
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    print("  scenario took %.0f s" % (time.monotonic() - t0), flush=True)
