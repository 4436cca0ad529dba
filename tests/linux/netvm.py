"""A default-image Linux guest under popek, driven over its serial console
(for tests/integration/65-net.sh and bench/net). Use:

    vm = Guest(popek, images, ["--net", "user"], name="net-1")
    vm.wait_shell(); vm.wait_lease(); print(vm.run("ip addr")); vm.poweroff()
"""
import os
import select
import subprocess
import time
import uuid

PROMPT = b"popek:/# "


class GuestError(Exception):
    pass


def report(ok, name, why=""):
    """One scenario check as the integration suites count it (tests/lib.sh)."""
    print(("ok   %s" % name) if ok else ("FAIL %s: %s" % (name, why)), flush=True)


def check(name, fn):
    """Run fn() -> (ok, why) and report it; an exception fails the check."""
    try:
        ok, why = fn()
    except (GuestError, OSError, ValueError, IndexError, subprocess.SubprocessError) as e:
        ok, why = False, str(e)[-600:]
    report(ok, name, why)
    return ok


class Guest:
    def __init__(self, popek, images, args, name, engine="soft", mem="256M", argv=None,
                 prefix=()):
        self.name = name
        self.out = b""
        self.log = b""
        cmd = argv or [popek, "run", "--engine", engine, "--mem", mem, "--name", name,
                       "--kernel", os.path.join(images, "vmlinux"),
                       "--initrd", os.path.join(images, "initramfs.cpio.gz"),
                       "--cmdline", "console=ttyS0 panic=-1 quiet cryptomgr.notests"] + args
        cmd = list(prefix) + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        os.set_blocking(self.proc.stderr.fileno(), False)

    def stderr(self):
        try:
            return (self.proc.stderr.read() or b"").decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def read_until(self, marker, limit):
        deadline = time.monotonic() + limit
        while marker not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise GuestError("%s: no %r within %ds; console tail: %r; stderr: %s" %
                                 (self.name, marker, limit, self.log[-300:], self.stderr()))
            if self.proc.poll() is not None and not select.select([self.proc.stdout], [], [], 0)[0]:
                raise GuestError("%s: popek exited (%d) before %r; console tail: %r; stderr: %s"
                                 % (self.name, self.proc.returncode, marker, self.log[-300:],
                                    self.stderr()))
            r, _, _ = select.select([self.proc.stdout], [], [], min(left, 0.5))
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    self.proc.wait()
                    raise GuestError("%s: popek exited (%d) before %r; console tail: %r; stderr: %s"
                                     % (self.name, self.proc.returncode, marker, self.log[-300:],
                                        self.stderr()))
                self.out += chunk
                self.log += chunk
        idx = self.out.index(marker) + len(marker)
        before, self.out = self.out[:idx], self.out[idx:]
        return before

    def wait_shell(self, limit=240):
        self.read_until(PROMPT, limit)

    def send(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def run(self, cmd, limit=120):
        """Run a shell command in the guest; return its output."""
        tag = uuid.uuid4().hex[:8]
        # The markers are built by the shell, so the echoed command never matches.
        self.send(f"echo B{tag}''; {cmd}; echo E{tag}''")
        self.read_until(f"B{tag}\r\n".encode(), limit)
        body = self.read_until(f"E{tag}\r\n".encode(), limit)
        text = body[:-len(f"E{tag}\r\n")].decode(errors="replace").replace("\r\n", "\n")
        # The image's own notes (udhcpc's "popek-guest: eth0 has ...") go to
        # /dev/console at any time and can land inside a command's output.
        return "\n".join(l for l in text.split("\n") if not l.startswith("popek-guest: ")).strip()

    def wait_lease(self, limit=120):
        """Wait until eth0 has an IPv4 address (udhcpc runs from /init)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            a = self.run("ip -4 -o addr show eth0 | awk '{print $4}'", 30)
            if a:
                return a
            time.sleep(1)
        raise GuestError("%s: eth0 got no address in %ds" % (self.name, limit))

    def poweroff(self, limit=60):
        self.send("poweroff -f")
        try:
            return self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.kill()
            return -1

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
