# Hostile guest: guests/hostile.c attacks every device (broken virtqueues, bad
# queue setups, bogus MSI-X entries, port/MMIO floods, BARs moved over the LAPIC
# and RAM, an IPI storm on 2 vCPUs) and judges each answer itself. Meanwhile
# the control socket must answer every stats request within 100 ms, a second VM
# beside it must finish unaffected, and the disk outside the sectors the guest
# writes (16..19) must stay as it was.
export POPEK_RUNTIME_DIR=$TMP/run
HOSTILE_SECTORS="16 20" # [first, end) of the sectors the guest may write
# hostile_poll PID NAME: ask NAME for stats every 20 ms while PID lives; prints
# "answers max_ms" or fails (exit 1) on an error or an answer slower than 100 ms.
hostile_poll() {
	python3 - "$1" "$POPEK_RUNTIME_DIR/$2.sock" <<'PY'
import json, os, socket, sys, time
pid, path = int(sys.argv[1]), sys.argv[2]
def alive():
    try:
        os.kill(pid, 0); return True
    except OSError:
        return False
answers, worst, slow = 0, 0.0, 0
while alive():
    t0 = time.monotonic()
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect(path)
        s.sendall(b'{"cmd":"stats"}\n')
        buf = b""
        while not buf.endswith(b"\n"):
            c = s.recv(65536)
            if not c:
                break
            buf += c
        s.close()
    except OSError:
        time.sleep(0.005)  # not listening yet, or the VM just ended
        continue
    ms = (time.monotonic() - t0) * 1000
    if not buf.endswith(b"\n"):
        continue  # the VM closed the socket while ending
    if not json.loads(buf).get("ok"):
        print(f"error answer: {buf[:200]!r}"); sys.exit(1)
    answers += 1
    worst = max(worst, ms)
    slow += ms > 100
    time.sleep(0.02)
print(f"{answers} {worst:.1f} {slow}")
sys.exit(1 if slow or answers < 5 else 0)
PY
}
# hostile_disk_unchanged ORIG IMG: every byte outside the guest's sectors is equal.
hostile_disk_unchanged() {
	python3 - "$1" "$2" $HOSTILE_SECTORS <<'PY'
import sys
a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
lo, hi = int(sys.argv[3]) * 512, int(sys.argv[4]) * 512
sys.exit(0 if len(a) == len(b) and a[:lo] == b[:lo] and a[hi:] == b[hi:] else 1)
PY
}
head -c 1M /dev/urandom >"$TMP/hostile.orig"
hostile_run() { # LABEL BINARY ENGINE ROUNDS
	local label=$1 bin=$2 engine=$3 rounds=$4 name=hostile-$1
	cp "$TMP/hostile.orig" "$TMP/hostile.img"
	# The neighbour: a ring-3 computation with a known result, started first.
	timeout 120 "$bin" run --engine soft --kernel "$GUESTS/longrun.elf" --cmdline "rounds=6" \
		>"$TMP/$name.nb.out" 2>"$TMP/$name.nb.err" </dev/null &
	local nb=$!
	timeout 120 "$bin" run --engine "$engine" --cpus 2 --mem 128M --name "$name" \
		--kernel "$GUESTS/hostile.elf" --cmdline "rounds=$rounds" --disk "$TMP/hostile.img" \
		>"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null &
	local vm=$!
	local poll
	poll=$(hostile_poll "$vm" "$name")
	local prc=$?
	wait "$vm"
	RC=$?
	OUT=$TMP/$name.out ERR=$TMP/$name.err
	if grep -q "^hostile: BAD" "$OUT"; then
		fail "hostile ($label): attacks" "$(grep -m3 '^hostile: BAD' "$OUT" | cut -c1-200 | tr '\n' ' ')"
	else
		expect "hostile ($label): $(grep -c '^hostile: ok' "$OUT") attacks answered as expected" 1 "^PASS hostile"
	fi
	read -r answers worst slow <<<"$poll"
	if [ "$prc" -eq 0 ]; then
		pass "hostile ($label): control socket answered $answers stats requests, max latency $worst ms"
	else
		fail "hostile ($label): control socket" "$poll (answers, max ms, answers over 100 ms)"
	fi
	wait "$nb"
	RC=$?
	OUT=$TMP/$name.nb.out ERR=$TMP/$name.nb.err
	expect "hostile ($label): the VM beside it finished unaffected" 1 "result 0x6707bfe8909a868f after 6 rounds of 4000000"
	if hostile_disk_unchanged "$TMP/hostile.orig" "$TMP/hostile.img"; then
		pass "hostile ($label): disk unchanged outside the sectors the guest wrote"
	else
		fail "hostile ($label): disk" "bytes outside sectors $HOSTILE_SECTORS changed"
	fi
}
hostile_run soft "$POPEK_ROOT/build/popek" soft 20
hostile_run soft-san "$POPEK_ROOT/build/popek-san" soft 3
if [ -c /dev/kvm ]; then
	hostile_run kvm "$POPEK_ROOT/build/popek" kvm 1
else
	skip "hostile (kvm)" "no /dev/kvm"
fi
unset POPEK_RUNTIME_DIR
