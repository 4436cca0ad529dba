#!/usr/bin/env python3
"""The vhost-user-blk scenario of tests/integration/68-vhost-blk.sh: Linux on
the soft engine (jailed) with seven disks — a qcow2 overlay on a backing file
(vda), a plain qcow2 (vdb), a qemu-storage-daemon the test starts itself
(--disk socket=, vdc), a raw image (vdd), a raw image named .qcow2 (vde), a
qcow2 whose daemon the test kills mid-I/O (vdf) and the backing file itself,
read-only (vdg). Killed mid-write, popek's daemon is restarted and the
user's is started again by the test: the write completes either way; then
vdf's image is moved away and its daemon killed again, which fails the
disk for good. Data written in the guest
is checked on the host (qemu-img convert, qemu-img check) and read back by a
second popek process. Prints one "ok NAME" or "FAIL NAME: why" per check.
Usage: blk_test.py POPEK IMAGES TMPDIR
"""
import hashlib
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netvm import Guest, GuestError, check, report  # noqa: E402

popek, images, tmp = sys.argv[1:4]
QSD = "/usr/bin/qemu-storage-daemon"
MIB = 1 << 20
t0 = time.monotonic()


def path(name):
    return os.path.join(tmp, name)


def img(*args):
    return subprocess.run(["qemu-img"] + list(args), capture_output=True, text=True, check=True)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def host_range(image, offset, length):
    """Bytes of a disk image as the guest sees them (any format)."""
    raw = path("view.raw")
    img("convert", "-O", "raw", image, raw)
    with open(raw, "rb") as f:
        f.seek(offset)
        data = f.read(length)
    os.unlink(raw)
    return data


def guest_sha(vm, dev, offset_mib, mib):
    out = vm.run("dd if=/dev/%s bs=1M skip=%d count=%d iflag=direct 2>/dev/null | sha256sum"
                 % (dev, offset_mib, mib))
    return out.split()[0] if out else ""


def guest_write(vm, dev, offset_mib, mib):
    """Writes random data from the guest; returns its sha256."""
    out = vm.run("dd if=/dev/urandom of=/tmp/w bs=1M count=%d 2>/dev/null; "
                 "dd if=/tmp/w of=/dev/%s bs=1M seek=%d oflag=direct conv=fsync 2>&1 | tail -1; "
                 "sha256sum /tmp/w" % (mib, dev, offset_mib))
    return out.split()[-2] if out else ""


# The images, as qemu-img makes them.
base = os.urandom(2 * MIB)
with open(path("base.raw"), "wb") as f:
    f.write(base + bytes(30 * MIB))
img("convert", "-f", "raw", "-O", "qcow2", path("base.raw"), path("base.qcow2"))
img("create", "-f", "qcow2", "-b", path("base.qcow2"), "-F", "qcow2", path("ov.qcow2"))
img("create", "-f", "qcow2", path("a.qcow2"), "64M")
# The disks whose daemons are killed mid-write: with their metadata written
# up front a daemon holds nothing unwritten (an unflushed cluster allocation
# would be lost with it, as in a power cut), so every acknowledged byte must
# read back.
for n in ("u", "k"):
    img("create", "-f", "qcow2", "-o", "preallocation=metadata", path(n + ".qcow2"), "64M")
for n in ("r.img", "fake.qcow2"):
    with open(path(n), "wb") as f:
        f.truncate(16 * MIB)
base_file = sha(open(path("base.qcow2"), "rb").read())

sock = path("user.sock")


def start_user_qsd():
    """The user's own daemon on sock (replacing a stale socket file)."""
    if os.path.exists(sock):
        os.unlink(sock)
    qsd = subprocess.Popen([QSD, "--blockdev", "driver=file,node-name=f0,filename=" + path("u.qcow2"),
                            "--blockdev", "driver=qcow2,node-name=d0,file=f0", "--export",
                            "type=vhost-user-blk,id=e0,node-name=d0,addr.type=unix,addr.path=%s,"
                            "writable=on" % sock])
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    return qsd


user_qsd = start_user_qsd()

disks = ["ov.qcow2", "a.qcow2", None, "r.img", "fake.qcow2", "k.qcow2"]
args = ["--net", "none"]
for d in disks:
    args += ["--disk", path(d) if d else "socket=" + sock]
args += ["--disk", path("base.qcow2") + ",ro"]  # vdg: also the overlay's backing file


def daemons():
    """popek's qemu-storage-daemons: their command lines."""
    out = subprocess.run(["pgrep", "-af", "^" + QSD + " .*addr.path=/tmp/popek-blk"],
                         capture_output=True, text=True).stdout
    return out.splitlines()


written = {}
vm = Guest(popek, images, args, "vhost-blk")
try:
    vm.wait_shell(300)

    def sizes():
        out = vm.run("for d in vda vdb vdc vdd vde vdf vdg; do cat /sys/block/$d/size; done").split()
        want = ["65536", "131072", "131072", "32768", "32768", "131072", "65536"]
        return out == want, "sizes %r, want %r" % (out, want)

    def who_serves():
        lines = daemons()
        served = [d for d in disks if d and any("filename=%s " % path(d) in l for l in lines)]
        # popek, its jailed VMM and the backends' keepers: what they hold open.
        pids = subprocess.run(["pgrep", "-f", "^%s run .*--name vhost-blk " % popek],
                              capture_output=True, text=True).stdout.split()
        fds = []
        for p in pids:
            fds += [os.readlink("/proc/%s/fd/%s" % (p, f)) for f in os.listdir("/proc/%s/fd" % p)]
        own = [d for d in disks if d and path(d) in fds]
        return (sorted(served) == ["a.qcow2", "k.qcow2", "ov.qcow2"] and
                sorted(own) == ["fake.qcow2", "r.img"],
                "qemu-storage-daemon serves %r, popek has open %r" % (served, own))

    def backing():
        got = guest_sha(vm, "vda", 0, 2)
        return got == sha(base), "guest %s, backing file %s" % (got, sha(base))

    def write_read():
        ok, why = True, []
        for dev, name in (("vda", "ov.qcow2"), ("vdb", "a.qcow2"), ("vdd", "r.img")):
            written[name] = guest_write(vm, dev, 4, 2)
            back = guest_sha(vm, dev, 4, 2)
            ok &= back == written[name] and len(back) == 64
            why.append("%s wrote %s read %s" % (dev, written[name], back))
        return ok, "; ".join(why)

    def read_only():
        out = vm.run("cat /sys/block/vdg/ro; dd if=/dev/zero of=/dev/vdg bs=4k count=1 "
                     "oflag=direct; echo status=$?")
        got = guest_sha(vm, "vdg", 0, 2)
        return (out.startswith("1") and "status=1" in out and got == sha(base),
                "guest: %r, reads %s, base %s" % (out, got, sha(base)))

    def socket_disk():
        w = guest_write(vm, "vdc", 1, 1)
        back = guest_sha(vm, "vdc", 1, 1)
        return w == back and len(w) == 64, "wrote %s read %s" % (w, back)

    def snapshot_refused():
        r = subprocess.run([popek, "snapshot", "vhost-blk", path("snap")], capture_output=True,
                           text=True)
        alive = vm.proc.poll() is None and len(guest_sha(vm, "vdb", 0, 1)) == 64
        err = popek_says()
        return (r.returncode != 0 and "virtio-blk0 cannot save" in r.stderr and alive and
                "vhost-user backend" in err,
                "rc %d: %r alive=%s popek: %r" % (r.returncode, r.stderr, alive, err[-300:]))

    said = []

    def popek_says():
        """All popek has written to stderr so far."""
        said.append(vm.stderr())
        return "".join(said)

    def write_through(dev, cut):
        """The guest writes 48 MiB of random data to dev with O_DIRECT, eight
        writers at once (so requests are in flight together and the daemon
        may answer them out of order); cut() runs while they are under way.
        Returns (they still ran when cut, their exit statuses, the sha256
        written, the sha256 read back)."""
        stat = "$(awk '{print $7}' /sys/block/%s/stat)" % dev
        vm.run("dd if=/dev/urandom of=/tmp/w bs=1M count=48 2>/dev/null; rm -f /tmp/dd.*; "
               "s0=%s; for k in 0 1 2 3 4 5 6 7; do (dd if=/tmp/w of=/dev/%s bs=4k skip=$((k*1536)) "
               "seek=$((k*1536)) count=1536 oflag=direct 2>/dev/null; echo $? >/tmp/dd.$k) & "
               "done" % (stat, dev))
        # Cut as soon as the writes reach the disk (its sectors written, the
        # 7th field of its stat, grow), not after a fixed time that a faster
        # guest outruns.
        vm.run("for i in $(seq 200); do [ %s -gt $s0 ] && break; sleep 0.05; done" % stat)
        running = vm.run("ls /tmp/dd.* 2>/dev/null | wc -l") == "0"
        cut()
        st = vm.run("wait; cat /tmp/dd.*", 180).split()
        wrote = vm.run("sha256sum /tmp/w").split()[0]
        return running, st, wrote, guest_sha(vm, dev, 0, 48)

    def qsd_of(name):
        return [int(l.split()[0]) for l in daemons() if "filename=%s " % path(name) in l]

    def restart_own():
        before = qsd_of("k.qcow2")

        def cut():
            for p in before:
                os.kill(p, 9)
        running, st, wrote, back = write_through("vdf", cut)
        after = qsd_of("k.qcow2")
        err = popek_says()
        ok = (before and running and st == ["0"] * 8 and wrote == back and after and
              not set(after) & set(before) and "virtio-blk5" in err and
              "popek restarts it" in err and "reconnected" in err)
        return ok, "daemons %r -> %r, dd ran %s, %r, wrote %s read %s, popek: %r" % (
            before, after, running, st, wrote, back, err[-400:])

    def reconnect_user():
        global user_qsd

        def cut():
            global user_qsd
            user_qsd.kill()
            user_qsd.wait()
            time.sleep(1)
            user_qsd = start_user_qsd()
        running, st, wrote, back = write_through("vdc", cut)
        err = popek_says()
        ok = (running and st == ["0"] * 8 and wrote == back and
              "virtio-blk2" in err and "waits for it at its socket" in err and
              err.count("reconnected") >= 2)
        return ok, "dd ran %s, %r, wrote %s read %s, popek: %r" % (
            running, st, wrote, back, err[-400:])

    def kill_backend():
        # The image is gone, so the restarted daemon exits at once: popek
        # gives up and the disk fails for good.
        os.rename(path("k.qcow2"), path("k.moved"))
        vm.run("dd if=/dev/zero of=/dev/vdf bs=64k count=4000 oflag=direct 2>/tmp/dd.err & "
               "echo $! >/tmp/dd.pid")
        time.sleep(2)
        pids = qsd_of("k.qcow2")
        if not pids:
            return False, "no qemu-storage-daemon for k.qcow2 found"
        for p in pids:
            os.kill(p, 9)
        out = vm.run("wait $(cat /tmp/dd.pid); echo dd-status=$?; cat /tmp/dd.err; "
                     "dd if=/dev/vdf of=/dev/null bs=4k count=1 skip=9999 iflag=direct; "
                     "echo read-status=$?", 120)
        other = guest_sha(vm, "vdb", 4, 2)
        alive = vm.proc.poll() is None
        err = popek_says()
        ok = (alive and "dd-status=0" not in out and "read-status=1" in out and
              "I/O error" in out and other == written["a.qcow2"] and
              "no new backend" in err and "backend is gone; every request" in err)
        return ok, "alive=%s guest: %r other disk %s popek: %r" % (alive, out, other, err[-400:])

    check("vhost-blk: seven disks appear with their sizes (overlay, qcow2, socket, raw, raw .qcow2, ro)",
          sizes)
    check("vhost-blk: qcow2 images go to qemu-storage-daemon, raw ones (also *.qcow2) to popek",
          who_serves)
    check("vhost-blk: a qcow2 overlay reads its backing file's data", backing)
    check("vhost-blk: the guest writes and reads back qcow2, overlay and raw disks", write_read)
    check("vhost-blk: a qcow2 given with ,ro is read-only in the guest", read_only)
    check("vhost-blk: --disk socket= serves I/O from a qemu-storage-daemon the user started",
          socket_disk)
    check("vhost-blk: a snapshot of a VM with a vhost-user disk is refused, the VM runs on",
          snapshot_refused)
    check("vhost-blk: qemu-storage-daemon killed mid-write is restarted, the write completes "
          "and reads back", restart_own)
    check("vhost-blk: the user's qemu-storage-daemon killed mid-write and started again on its "
          "socket: popek reconnects, the write completes and reads back", reconnect_user)
    check("vhost-blk: a daemon that cannot be restarted (its image is gone) fails the guest's "
          "I/O, popek keeps running and says so", kill_backend)
    rc = vm.poweroff()
    report(rc == 0 and not daemons(), "vhost-blk: the VM powers off and its daemons end",
           "exit %d, daemons %r: %s" % (rc, daemons(), vm.stderr()))
except GuestError as e:
    report(False, "vhost-blk: first boot", str(e)[-600:])
finally:
    vm.kill()


def images_check():
    out = [img("check", path(n)).stdout for n in ("ov.qcow2", "a.qcow2", "base.qcow2")]
    return all("No errors were found" in o for o in out), repr(out)


def host_sees():
    ov = host_range(path("ov.qcow2"), 0, 6 * MIB)
    a = host_range(path("a.qcow2"), 4 * MIB, 2 * MIB)
    base_same = sha(open(path("base.qcow2"), "rb").read()) == base_file
    ok = (sha(ov[:2 * MIB]) == sha(base) and sha(ov[4 * MIB:]) == written.get("ov.qcow2") and
          sha(a) == written.get("a.qcow2") and base_same)
    return ok, "overlay %s/%s, a.qcow2 %s, backing file unchanged: %s" % (
        sha(ov[:2 * MIB]), sha(ov[4 * MIB:]), sha(a), base_same)


check("vhost-blk: qemu-img check passes on the images afterwards", images_check)
check("vhost-blk: the host sees the guest's writes in the images, the backing file untouched",
      host_sees)
report(user_qsd.poll() is None, "vhost-blk: the user's qemu-storage-daemon is left running")
user_qsd.terminate()
user_qsd.wait()

vm = Guest(popek, images, ["--net", "none", "--disk", path("ov.qcow2"), "--disk", path("a.qcow2")],
           "vhost-blk-2")
try:
    vm.wait_shell(300)

    def after_reboot():
        got = (guest_sha(vm, "vda", 4, 2), guest_sha(vm, "vdb", 4, 2), guest_sha(vm, "vda", 0, 2))
        want = (written.get("ov.qcow2"), written.get("a.qcow2"), sha(base))
        return got == want, "read %r, wrote %r" % (got, want)

    check("vhost-blk: a new popek process reads back what the guest wrote", after_reboot)
    rc = vm.poweroff()
    report(rc == 0, "vhost-blk: the second VM powers off", "exit %d: %s" % (rc, vm.stderr()))
except GuestError as e:
    report(False, "vhost-blk: second boot", str(e)[-600:])
finally:
    vm.kill()
print("  scenario took %.0f s" % (time.monotonic() - t0), flush=True)
