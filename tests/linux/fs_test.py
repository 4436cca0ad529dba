#!/usr/bin/env python3
"""The virtio-fs scenario of tests/integration/66-vhost.sh: one guest (soft
engine, jailed) with three shares — a folder served by a virtiofsd popek
starts, the same kind read-only, and a virtiofsd the test starts itself
(--fs socket=). Then the test kills popek's virtiofsd: requests fail in the
guest, popek keeps running. Prints one "ok NAME" or "FAIL NAME: why" per check.
Usage: fs_test.py POPEK IMAGES TMPDIR
"""
import hashlib
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netvm import Guest, GuestError, check, report  # noqa: E402

popek, images, tmp = sys.argv[1:4]
t0 = time.monotonic()


rw, ro, ext = (os.path.join(tmp, d) for d in ("rw", "ro", "ext"))
for d in (rw, ro, ext):
    os.makedirs(d, exist_ok=True)
blob = os.urandom(300 * 1024)
open(os.path.join(rw, "blob"), "wb").write(blob)
open(os.path.join(ro, "keep"), "w").write("read-only\n")
open(os.path.join(ext, "hello"), "w").write("from the user's virtiofsd\n")
ext_sock = os.path.join(tmp, "ext.sock")
vfsd = subprocess.Popen(["/usr/lib/qemu/virtiofsd", "--socket-path=" + ext_sock, "-o", "source=" + ext],
                        stderr=subprocess.DEVNULL)
for _ in range(100):
    if os.path.exists(ext_sock):
        break
    time.sleep(0.05)

vm = Guest(popek, images, ["--net", "none", "--fs", rw + ",tag=rw", "--fs", ro + ",tag=ro,ro",
                           "--fs", "socket=%s,tag=ext" % ext_sock], "vhost-fs")
try:
    vm.wait_shell(300)
    mounted = vm.run("for t in rw ro ext; do mkdir -p /$t && mount -t virtiofs $t /$t && echo M$t; done")

    def read_host_file():
        got = vm.run("sha256sum /rw/blob").split()
        want = hashlib.sha256(blob).hexdigest()
        return got[:1] == [want], "mount: %r; guest sha256 %r, host %s" % (mounted, got, want)

    def write_guest_file():
        vm.run("head -c 200000 /dev/urandom >/rw/out; sync")
        g = vm.run("sha256sum /rw/out").split()[:1]
        p = os.path.join(rw, "out")
        h = hashlib.sha256(open(p, "rb").read()).hexdigest() if os.path.exists(p) else "missing"
        return g == [h], "guest %r, host %s" % (g, h)

    def ro_refuses():
        out = vm.run("cat /ro/keep; echo x >/ro/new && echo WROTE; rm /ro/keep && echo REMOVED")
        ok = ("read-only" in out and "Read-only file system" in out and "WROTE" not in out and
              "REMOVED" not in out and os.path.exists(os.path.join(ro, "keep")) and
              not os.path.exists(os.path.join(ro, "new")))
        return ok, out

    def attach_socket():
        out = vm.run("cat /ext/hello; echo back >/ext/reply")
        p = os.path.join(ext, "reply")
        back = open(p).read() if os.path.exists(p) else ""
        return "from the user's virtiofsd" in out and back == "back\n", "%r / %r" % (out, back)

    def kill_backend():
        # popek's own virtiofsd for "rw": the child of popek whose socket folder held rw.
        pids = subprocess.run(["pgrep", "-f", "source=" + rw + "( |$)"], capture_output=True,
                              text=True).stdout.split()
        if not pids:
            return False, "no virtiofsd for %s found" % rw
        for p in pids:
            os.kill(int(p), 9)
        time.sleep(1)
        out = vm.run("cat /rw/blob >/dev/null; ls /rw; cat /ext/hello", 60)
        alive = vm.proc.poll() is None
        err = vm.stderr()
        ok = (alive and "not connected" in out and "from the user's virtiofsd" in out and
              "backend is gone" in err)
        return ok, "alive=%s guest: %r popek stderr: %r" % (alive, out, err[-300:])

    def snapshot_refused():
        r = subprocess.run([popek, "snapshot", "vhost-fs", os.path.join(tmp, "snap")],
                           capture_output=True, text=True)
        alive = vm.proc.poll() is None and "read-only" in vm.run("cat /ro/keep")
        return (r.returncode != 0 and "virtio-fs0 cannot save" in r.stderr and alive,
                "rc %d: %r alive=%s" % (r.returncode, r.stderr, alive))

    check("vhost: the guest mounts virtiofs shares and reads a host file (sha256)", read_host_file)
    check("vhost: a file the guest writes is on the host (sha256)", write_guest_file)
    check("vhost: a ro share refuses writes and removals", ro_refuses)
    check("vhost: --fs socket= attaches to a virtiofsd the user started", attach_socket)
    check("vhost: a snapshot of a VM with shares is refused, the VM runs on", snapshot_refused)
    check("vhost: killing virtiofsd fails the guest's requests (ENOTCONN), popek keeps running",
          kill_backend)
    rc = vm.poweroff()
    report(rc == 0, "vhost: the VM powers off normally afterwards", "exit %d: %s" % (rc, vm.stderr()))
except GuestError as e:
    report(False, "vhost: fs scenario", str(e)[-600:])
finally:
    vm.kill()
    vfsd.kill()
    vfsd.wait()
print("  scenario took %.0f s" % (time.monotonic() - t0), flush=True)
