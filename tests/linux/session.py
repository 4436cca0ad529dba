#!/usr/bin/env python3
"""Drive the default Linux guest through its serial console, like a person would.

Boots images/vmlinux + initramfs under popek, waits for the shell, runs commands
(virtio-rng entropy, a write to the virtio-blk disk, CPU count), then ends the VM
with END — poweroff; panic: a kernel panic through sysrq; snapshot: popek
snapshot --stop at the shell, popek restore, then the restored guest runs a
command, reads the disk back and powers off; or policy: disk, entropy and
console commands for a --policy given in POPEK_SESSION_ARGS (57-policy-dev.sh),
then poweroff; or migrate: a loop writing memory and the disk, popek migrate to
a popek receive on the same engine, then the loop's counter read there twice
and poweroff — and prints one JSON object with what it saw. Usage:
  [POPEK_SESSION_ARGS="more popek run options"] session.py POPEK IMAGES_DIR ENGINE CPUS DISK [TIMEOUT [END]]
"""
import json
import os
import select
import shlex
import subprocess
import sys
import time
import uuid

popek, images, engine, cpus, disk = sys.argv[1:6]
timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 600
end = sys.argv[7] if len(sys.argv) > 7 else "poweroff"
PROMPT = b"popek:/# "
t0 = time.monotonic()
name = "session-%d" % os.getpid()
snapdir = disk + ".snapshot"
proc = subprocess.Popen(
    [popek, "run", "--engine", engine, "--cpus", cpus, "--mem", "256M", "--name", name,
     "--kernel", os.path.join(images, "vmlinux"),
     "--initrd", os.path.join(images, "initramfs.cpio.gz"),
     "--cmdline", "console=ttyS0 panic=-1 quiet cryptomgr.notests", "--disk", disk, "--stats"]
    + shlex.split(os.environ.get("POPEK_SESSION_ARGS", "")),
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
out = b""
result = {"engine": engine, "cpus": int(cpus)}


def read_until(marker, limit):
    global out
    deadline = time.monotonic() + limit
    while marker not in out:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise TimeoutError(marker.decode())
        r, _, _ = select.select([proc.stdout], [], [], min(left, 1.0))
        if r:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise EOFError(marker.decode())
            out += chunk
    idx = out.index(marker) + len(marker)
    before, out = out[:idx], out[idx:]
    return before


def run(cmd, limit=120):
    """Run a shell command; return its output (between unique markers)."""
    tag = uuid.uuid4().hex[:8]
    # The markers are built by the shell, so the echoed command line never matches.
    proc.stdin.write(f"echo B{tag}''; {cmd}; echo E{tag}''\n".encode())
    proc.stdin.flush()
    read_until(f"B{tag}\r\n".encode(), limit)
    body = read_until(f"E{tag}".encode(), limit)
    return body[: -len(f"E{tag}")].decode(errors="replace").strip()


try:
    read_until(b"popek-guest: init ready", timeout)
    result["init_seconds"] = round(time.monotonic() - t0, 2)
    read_until(PROMPT, 120)
    result["prompt_seconds"] = round(time.monotonic() - t0, 2)
    result["echo"] = run("echo hello from the guest")
    result["kernel"] = run("uname -r")
    result["nproc"] = run("grep -c ^processor /proc/cpuinfo")
    result["x2apic"] = run("dmesg | grep -c 'x2apic enabled'")
    result["rng_current"] = run("cat /sys/class/misc/hw_random/rng_current")
    result["entropy"] = run("head -c 32 /dev/hwrng | od -An -tx1 | tr -d ' \\n'")
    token = "popek-disk-" + uuid.uuid4().hex
    result["disk_token"] = token
    result["dd"] = run(f"printf {token} | dd of=/dev/vda bs=512 count=1 conv=sync 2>&1; sync")
    if end == "policy":
        result["dd_denied"] = run("dd if=/dev/zero of=/dev/vda bs=4096 count=1 seek=1 conv=fsync 2>&1; echo rc=$?")
        result["dd_allowed"] = run("dd if=/dev/zero of=/dev/vda bs=4096 count=1 seek=2048 conv=fsync 2>&1; echo rc=$?")
        # 4 KiB direct reads, one request each, timed by the guest's clock
        result["rate"] = run("a=$(cut -d' ' -f1 /proc/uptime); "
                             "dd if=/dev/vda of=/dev/null bs=4096 count=120 iflag=direct 2>/dev/null; "
                             "echo $a $(cut -d' ' -f1 /proc/uptime)")
        result["console"] = run("echo 50%")
    if end == "snapshot":
        snap = subprocess.run([popek, "snapshot", name, snapdir, "--stop"], capture_output=True, text=True)
        result["snapshot_rc"] = snap.returncode
        result["snapshot_exit"] = proc.wait(60)
        proc = subprocess.Popen([popek, "restore", snapdir], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = b""
        result["after_restore"] = run("echo hello after restore")
        result["disk_after_restore"] = run("echo 3 > /proc/sys/vm/drop_caches; "
                                           "dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c %d" % len(token))
        result["entropy_after_restore"] = run("head -c 16 /dev/hwrng | od -An -tx1 | tr -d ' \\n'")
    if end == "migrate":
        run("{ (i=0; while :; do i=$((i+1)); dd if=/dev/urandom of=/mig.data bs=64k count=4 2>/dev/null; "
            "echo $i > /mig.count; echo loop-$i | dd of=/dev/vda bs=512 seek=8 conv=sync,fsync 2>/dev/null; "
            "done) >/dev/null 2>&1 & }")
        time.sleep(3)
        result["count_before"] = int(run("cat /mig.count"))
        sock = disk + ".sock"
        dst = subprocess.Popen([popek, "receive", "--listen", "unix:" + sock, "--engine", engine,
                                "--name", name + "-dst"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while not os.path.exists(sock) and dst.poll() is None:
            time.sleep(0.05)
        # The guest's clock against the host's, before and twice after the move.
        clock = lambda: (float(run("cat /proc/uptime").split()[0]), round(time.monotonic(), 2))
        result["clock_before"] = clock()
        mig = subprocess.run([popek, "migrate", name, "unix:" + sock], capture_output=True, text=True)
        result["migrate_rc"] = mig.returncode
        result["migrate_out"] = mig.stderr[-600:]
        result["source_exit"] = proc.wait(60)
        proc, out = dst, b""
        result["count_after"] = int(run("cat /mig.count") or "0")
        result["clock_after"] = clock()
        time.sleep(3)
        result["count_later"] = int(run("cat /mig.count") or "0")
        result["clock_later"] = clock()
        result["shell_after"] = run("echo hello after migration")
        result["disk_loop"] = run("echo 3 > /proc/sys/vm/drop_caches; "
                                  "dd if=/dev/vda bs=512 skip=8 count=1 2>/dev/null | head -c 16")
    proc.stdin.write(b"echo c > /proc/sysrq-trigger\n" if end == "panic" else b"poweroff -f\n")
    proc.stdin.flush()
    proc.stdin.close()
    result["exit_code"] = proc.wait(120)
    result["total_seconds"] = round(time.monotonic() - t0, 2)
except (TimeoutError, EOFError) as e:
    proc.kill()
    proc.wait()
    result["error"] = f"waited in vain for {e}"
    result["tail"] = out[-600:].decode(errors="replace")
err = proc.stderr.read().decode(errors="replace")
result["stats"] = next((json.loads(l) for l in err.splitlines() if l.startswith("{")), None)
result["stderr"] = "\n".join(l for l in err.splitlines() if not l.startswith("{"))[-600:]
with open(disk, "rb") as f:
    result["disk_head"] = f.read(64).split(b"\0")[0].decode(errors="replace")
print(json.dumps(result))
