"""Net policy rules on a real guest (for tests/integration/58-policy-net.sh):
the default image on user networking (libslirp) under `--policy`, TCP
servers and an HTTP server on 127.0.0.1 that the test starts, `popek trace
--class net` attached, the policy printed in canonical form and replaced
live. Prints one "ok NAME" or "FAIL NAME: why" line per check.

Usage: policy_net_test.py POPEK IMAGES TMP
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netvm import Guest, check  # noqa: E402

popek, images, tmp = sys.argv[1:4]
BLOB = 4 << 20
# limit net rx bytes 256K/s burst 128K: a rate the soft engine sustains on a loaded host
# (so that the limit is what is measured), and a burst of half a second, so that a vCPU
# the host does not run for a while catches up instead of losing its share; small
# against the bytes measured (GCRA: any window gets at most rate * time + burst).
RATE, BURST = 256 << 10, 128 << 10
NAME = "pnet-%d" % os.getpid()
t0 = time.monotonic()


class Server:
    """A TCP server on 127.0.0.1 that greets each client and counts them."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.handle(c)
            c.close()

    def handle(self, c):
        c.sendall(b"hello-%d\n" % self.port)


def popek_cmd(*args):
    return subprocess.run([popek, *args], capture_output=True, text=True, timeout=30)


def write(name, text):
    path = os.path.join(tmp, name)
    open(path, "w").write(text)
    return path


def greet(vm, srv):
    """What the guest gets from srv (empty if it cannot connect)."""
    return vm.run("nc -w 3 10.0.2.2 %d </dev/null 2>/dev/null" % srv.port, 60)


def middle_rate(lines, op, port):
    """The frames of a transfer as the gate passed them (trace lines with op
    and port), their bytes with headers (as a limit counts them), and their
    rate over the middle 80 % of the bytes: past the burst and TCP's slow
    start, before the last frames. Also whether the trace lost events."""
    frames = [json.loads(l) for l in lines if op in l and port in l]
    got = sum(f["len"] for f in frames)
    marks, run = [], 0
    for f in frames:
        run += f["len"]
        marks.append((run, f["ns"]))
    lo = next((m for m in marks if m[0] >= 0.1 * got), (0, 0))
    hi = next((m for m in marks if m[0] >= 0.9 * got), (0, 0))
    span = (hi[1] - lo[1]) / 1e9
    return frames, got, span, (hi[0] - lo[0]) / span if span > 0 else 0, \
        any('"dropped"' in l for l in lines)


def trace_start(name):
    """popek trace --class net into a file (a pipe nobody reads would fill)."""
    path = os.path.join(tmp, "trace-%s.jsonl" % name)
    return subprocess.Popen([popek, "trace", NAME, "--class", "net"], stdout=open(path, "w"),
                            stderr=subprocess.DEVNULL), path


def trace_stop(proc, path):
    proc.terminate()
    proc.wait(10)
    return open(path).read().splitlines()


class Sink(Server):
    """A TCP server on 127.0.0.1 that counts the bytes clients send."""

    got = 0

    def handle(self, c):
        while True:
            b = c.recv(65536)
            if not b:
                return
            self.got += len(b)


smtp, other, sink = Server(), Server(), Sink()
www = os.path.join(tmp, "www")
os.makedirs(www, exist_ok=True)
open(os.path.join(www, "blob"), "wb").write(os.urandom(BLOB))
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
http_port = probe.getsockname()[1]
probe.close()
httpd = subprocess.Popen([sys.executable, "-m", "http.server", str(http_port), "--bind", "127.0.0.1",
                          "--directory", www], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
first = write("first.policy", "# mail stays in\ndeny net tcp dport %d   # the guest's SMTP\n" % smtp.port)
vm = trace = None
try:
    vm = Guest(popek, images, ["--net", "user", "--policy", first], NAME)
    vm.wait_shell(300)
    vm.wait_lease()
    trace, trace_path = trace_start("first")
    time.sleep(1)

    def denied_port():
        got = greet(vm, smtp)
        return (got == "" and smtp.accepted == 0,
                "deny net tcp dport %d: the guest got %r, the server saw %d connections"
                % (smtp.port, got, smtp.accepted))
    check("policy-net: deny net tcp dport P: the guest cannot connect to a host server on P",
          denied_port)
    check("policy-net: another port still works",
          lambda: (greet(vm, other) == "hello-%d" % other.port, "no greeting from port %d" % other.port))

    def canonical():
        r = popek_cmd("policy", NAME)
        want = "deny net tcp dport %d\n" % smtp.port
        return r.returncode == 0 and r.stdout == want, "popek policy printed %r (rc %d, %s)" % (
            r.stdout, r.returncode, r.stderr.strip())
    check("policy-net: popek policy NAME prints the rules in canonical form", canonical)

    def traced():
        time.sleep(1.5)  # the trace writer looks at its ring every millisecond
        lines = trace_stop(trace, trace_path)
        deny = [l for l in lines if '"verdict":"deny"' in l and '"dport":%d' % smtp.port in l]
        ok_rx = [l for l in lines if '"op":"rx"' in l and '"sport":%d' % other.port in l and
                 '"verdict":"allow"' in l]
        want = '"device":"virtio-net0","class":"net","op":"tx"'
        good = (deny and want in deny[0] and '"proto":6' in deny[0] and
                '"dst":"10.0.2.2"' in deny[0] and '"ethertype":2048' in deny[0] and '"rule":2' in deny[0]
                and ok_rx)
        return good, "%d lines; denied: %r; rx from the other port: %d" % (
            len(lines), deny[:1], len(ok_rx))
    check("policy-net: popek trace --class net shows frames with their verdicts", traced)

    def policy_stats():
        """popek stats NAME: the deny rule's count is the frames the trace saw it deny."""
        denied = [l for l in open(trace_path).read().splitlines() if '"verdict":"deny"' in l]
        r = popek_cmd("stats", NAME)
        try:
            pol = json.loads(r.stdout)["policy"]
        except (ValueError, KeyError) as e:
            return False, "popek stats rc %d, no policy counts (%s): %r" % (r.returncode, e, r.stdout[-300:])
        want = [{"line": 2, "rule": "deny net tcp dport %d" % smtp.port, "hits": len(denied)}]
        return (denied and pol["rules"] == want and pol["by_class"] == {"net": {"deny": len(denied)}},
                "the trace denied %d frames; popek stats says %r" % (len(denied), pol))
    check("policy-net: popek stats counts the denied frames, per rule and by class", policy_stats)

    # Live: the other port is denied now, SMTP allowed, and receive limited.
    second = write("second.policy", "deny net tx tcp dst 10.0.2.2/32 dport %d\n"
                   "limit net rx bytes 256K/s burst 128K\n" % other.port)

    def replaced():
        r = popek_cmd("policy", NAME, second)
        a, b = greet(vm, smtp), greet(vm, other)
        return (r.returncode == 0 and a == "hello-%d" % smtp.port and b == "",
                "popek policy rc %d (%s); smtp %r, other %r" % (r.returncode, r.stderr.strip(), a, b))
    check("policy-net: a policy replaced live takes effect", replaced)

    def round_trip():
        shown = popek_cmd("policy", NAME).stdout
        again = write("again.policy", shown)
        r = popek_cmd("policy", NAME, again)
        return (r.returncode == 0 and popek_cmd("policy", NAME).stdout == shown and
                shown == ("deny net tx tcp dst 10.0.2.2 dport %d\nlimit net rx bytes 256K/s burst 128K\n"
                          % other.port),
                "printed %r, sent back: rc %d %s" % (shown, r.returncode, r.stderr.strip()))
    check("policy-net: the canonical form sent back is the same policy", round_trip)

    def limited():
        tr, path = trace_start("limit")
        time.sleep(1)
        out = vm.run("a=$(cut -d' ' -f1 /proc/uptime); wget -q -O /tmp/b http://10.0.2.2:%d/blob;"
                     " b=$(cut -d' ' -f1 /proc/uptime); echo $a $b $(wc -c </tmp/b); rm /tmp/b"
                     % http_port, 180)
        time.sleep(1.5)
        lines = trace_stop(tr, path)
        words = out.split()
        if len(words) < 3 or not words[-1].isdigit():
            return False, "the download failed: %r" % out[-300:]
        a, b, n = words[-3:]
        secs = float(b) - float(a)
        frames, got, span, rate, dropped = middle_rate(lines, '"op":"rx"', '"sport":%d,' % http_port)
        # The guest's own clock: never faster than the limit allows.
        least = 0.9 * (got - BURST) / RATE
        print("  limit: %d bytes through the gate, the middle 80 %% in %.2f s: %.0f B/s (limit %d); "
              "the guest's download took %.2f s" % (got, span, rate, RATE, secs), flush=True)
        return (int(n) == BLOB and not dropped and abs(rate - RATE) <= 0.1 * RATE and secs >= least,
                "%s bytes in %.2f s by the guest's clock (at least %.2f s); the gate passed %d bytes "
                "in %d frames, the middle 80 %% in %.2f s: %.0f B/s, want %d +- 10 %%%s"
                % (n, secs, least, got, len(frames), span, rate, RATE, "; trace dropped" if dropped else ""))
    check("policy-net: limit net rx bytes 256K/s holds a 4 MiB download within 10 %", limited)

    def limit_stats():
        """The counts start again with the live policy: the limit rule saw every
        frame of the download (and more: every received frame) and held them."""
        rules = json.loads(popek_cmd("stats", NAME).stdout)["policy"]["rules"]
        lines = open(os.path.join(tmp, "trace-limit.jsonl")).read().splitlines()
        frames = [l for l in lines if '"op":"rx"' in l and '"sport":%d,' % http_port in l]
        lim = rules[1]
        return (rules[0]["hits"] == 0 and lim["hits"] >= len(frames) > 0 and lim["held_ns"] > 0,
                "%d frames of the download traced; popek stats: %r" % (len(frames), rules))
    check("policy-net: popek stats counts the frames a limit rule held", limit_stats)

    def tx_limited():
        third = write("third.policy", "limit net tx bytes 256K/s burst 64K\n")
        r = popek_cmd("policy", NAME, third)
        tr, path = trace_start("tx")
        time.sleep(1)
        vm.run("dd if=/dev/zero bs=4096 count=512 2>/dev/null | nc -w 3 10.0.2.2 %d" % sink.port, 180)
        time.sleep(1.5)
        lines = trace_stop(tr, path)
        frames, got, span, rate, dropped = middle_rate(lines, '"op":"tx"', '"dport":%d,' % sink.port)
        want = 256 << 10
        print("  tx limit: %d bytes through the gate, the middle 80 %% in %.2f s: %.0f B/s (limit %d); "
              "the host got %d" % (got, span, rate, want, sink.got), flush=True)
        return (r.returncode == 0 and sink.got == 2 << 20 and not dropped and
                abs(rate - want) <= 0.1 * want,
                "popek policy rc %d; the host got %d bytes; the gate passed %d bytes in %d frames, "
                "the middle 80 %% in %.2f s: %.0f B/s, want %d +- 10 %%%s"
                % (r.returncode, sink.got, got, len(frames), span, rate, want,
                   "; trace dropped" if dropped else ""))
    check("policy-net: limit net tx bytes 256K/s holds a 2 MiB upload within 10 %", tx_limited)

    def malformed():
        bad = write("bad.policy", "deny net tcp dport 25\nmodify net bytes 0x00\n")
        r = popek_cmd("policy", NAME, bad)
        return (r.returncode != 0 and "bad.policy:2:8: expected another action: net frames cannot be "
                "modified" in r.stderr, "rc %d: %s" % (r.returncode, r.stderr.strip()))
    check("policy-net: modify net is refused with its line and column, the VM keeps its policy",
          malformed)
finally:
    print("  scenario took %.0f s" % (time.monotonic() - t0), flush=True)
    if trace and trace.poll() is None:
        trace.kill()
    if vm:
        vm.poweroff()
    httpd.terminate()
