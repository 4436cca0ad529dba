# Live migration with --copy-storage: a guest writing its disk (durable:
# record n into sector n, each flushed before it is acked) is moved mid-run
# over tcp on loopback to a destination that writes the disk into a file of
# its own. That file holds, at the handover, what the source's did, and at
# the end what an uninterrupted run leaves. A destination not given --disk,
# or given the source's own image, refuses; a DISK record outside the disk is
# refused; the source runs on each time.
export POPEK_RUNTIME_DIR=$TMP/run
P=$POPEK_ROOT/build/popek
DUR="$GUESTS/durable.elf"
RECORDS=60000 # 64 MiB hold 131071 records: no sector is written twice
# The image: random data in its first 48 MiB (so every block is copied, and
# sectors the guest never writes are checked too), zeros after.
head -c 48M /dev/urandom >"$TMP/base.img"
truncate -s 64M "$TMP/base.img"

cp "$TMP/base.img" "$TMP/ref.img"
VM_TIMEOUT=300 run_vm stor-ref run --engine soft --kernel "$DUR" --cmdline "records=$RECORDS" \
	--disk "$TMP/ref.img"
grep -q "^ack $RECORDS$" "$OUT" || fail "migrate storage: reference run" "rc $RC: $(tail -c 200 "$OUT")"

port() { echo "tcp:127.0.0.1:48$((RANDOM % 900 + 100))"; }

# start_src [RECORDS]: durable as VM "src" on its own copy of the image, once
# it has acked 2000 records.
start_src() {
	cp "$TMP/base.img" "$TMP/src.img"
	SRC_CON=$TMP/src-$RANDOM.con
	"$P" run --engine soft --name src --kernel "$DUR" --cmdline "records=${1:-$RECORDS}" \
		--disk "$TMP/src.img" --console "file:$SRC_CON" >/dev/null 2>"$TMP/src.err" </dev/null &
	SRC_PID=$!
	for _ in $(seq 400); do grep -q "^ack 2000$" "$SRC_CON" 2>/dev/null && break; sleep 0.05; done
}

# start_dst URI [receive options]: popek receive as VM "dst".
start_dst() {
	local uri=$1
	shift
	DST_CON=$TMP/dst-$RANDOM.con
	"$P" receive --listen "$uri" --name dst --console "file:$DST_CON" "$@" \
		>/dev/null 2>"$TMP/dst.err" </dev/null &
	DST_PID=$!
	for _ in $(seq 100); do grep -q "waiting for a VM" "$TMP/dst.err" 2>/dev/null && break; sleep 0.05; done
}

last_ack() { grep -ao "^ack [0-9]*$" "$SRC_CON" | tail -1 | grep -o "[0-9]*"; }
# runs_on: the source is alive and acks records past the one it is at now.
runs_on() { grows_on $SRC_PID last_ack; }

# The move, with the disk written all along.
URI=$(port)
rm -f "$TMP/dst.img"
start_dst "$URI" --disk "$TMP/dst.img"
start_src
timeout 120 "$P" migrate src "$URI" --copy-storage 2>"$TMP/mig.err"
mrc=$?
wait $SRC_PID
src=$?
timeout 300 tail --pid=$DST_PID -f /dev/null
wait $DST_PID
dst=$?
if grep -q "^ack $RECORDS$" "$SRC_CON"; then
	fail "migrate --copy-storage" "the guest finished before the migration: the test proves nothing"
elif [ $mrc != 0 ] || [ $src != 0 ] || [ $dst != 1 ]; then
	fail "migrate --copy-storage" "migrate rc $mrc, source rc $src, destination rc $dst: $(tail -c 300 "$TMP/mig.err") $(tail -c 300 "$TMP/dst.err")"
elif ! grep -q "^ack $RECORDS$" "$DST_CON" || ! grep -q "PASS durable" "$DST_CON"; then
	fail "migrate --copy-storage" "the guest did not finish on the destination: $(tail -c 200 "$DST_CON")"
elif ! grep -q "MiB of disk dirty" "$TMP/mig.err"; then
	fail "migrate --copy-storage" "popek migrate did not show the disk's dirty set: $(tail -c 300 "$TMP/mig.err")"
else
	# At the handover: every sector but those of the records the destination
	# acked (the first of them may have been written there or here) as the
	# source's image left it; at the end: as the uninterrupted run's.
	first=$(grep -ao "^ack [0-9]*$" "$DST_CON" | head -1 | grep -o "[0-9]*")
	if python3 - "$TMP/src.img" "$TMP/dst.img" "$TMP/ref.img" "$TMP/base.img" "$first" <<'PY'; then
import sys
src, dst, ref, base = (open(p, "rb").read() for p in sys.argv[1:5])
first = int(sys.argv[5])
problems = []
def differ(a, b, lo, hi):
    return [i // 512 for i in range(lo, hi, 512) if a[i:i + 512] != b[i:i + 512]]
if dst != ref:
    bad = differ(dst, ref, 0, len(ref))
    problems.append("the destination's image differs from the uninterrupted run's in %d sectors (first %d)" % (len(bad), bad[0] if bad else -1))
# durable writes record n to sector n (no wrap here): before the handover
# sectors 1 .. first - 1 (and maybe first), none after it.
bad = differ(src, dst, 0, first * 512)
if bad:
    problems.append("%d sectors written before the handover differ there (first %d)" % (len(bad), bad[0]))
bad = differ(src, base, (first + 1) * 512, len(base))
if bad:
    problems.append("the source wrote %d sectors after the handover (first %d)" % (len(bad), bad[0]))
print("  %d records acked before the handover; %d MiB compared" % (first - 1, len(dst) >> 20))
if problems:
    print("  " + "; ".join(problems))
    sys.exit(1)
PY
		pass "migrate --copy-storage: the disk written while moving arrives whole and the guest finishes there"
	else
		fail "migrate --copy-storage" "the images differ (see above)"
	fi
fi

# Refusals, before any guest code runs there: the source hears why and runs on.
# refused NAME DST_RC PATTERN [migrate options]: popek migrate fails (71),
# popek receive exits DST_RC saying PATTERN, the source says the destination
# refused and acks records on.
refused() {
	local name=$1 want=$2 pat=$3
	shift 3
	timeout 60 "$P" migrate src "$URI" "$@" 2>"$TMP/mig.err"
	local rc=$?
	timeout 60 tail --pid=$DST_PID -f /dev/null
	wait $DST_PID
	local drc=$?
	if [ $rc = 71 ] && [ $drc = "$want" ] && grep -q -- "$pat" "$TMP/dst.err" &&
		grep -q "destination refused the VM: .*$pat" "$TMP/mig.err" && [ ! -s "$DST_CON" ] && runs_on; then
		pass "$name"
	else
		fail "$name" "migrate rc $rc, receive rc $drc: $(tail -c 300 "$TMP/dst.err") / $(tail -c 300 "$TMP/mig.err")"
	fi
}
start_src 0
URI=$(port)
start_dst "$URI"
refused "migrate --copy-storage: a destination not given --disk refuses" 64 "give popek receive --disk PATH" --copy-storage
URI=$(port)
start_dst "$URI" --disk "$TMP/src.img"
refused "migrate --copy-storage: the source's own image as the copy is refused" 64 "is attached to a VM" --copy-storage
[ "$(stat -c %s "$TMP/src.img")" = $((64 << 20)) ] || fail "migrate --copy-storage: own image" "the source's image was truncated"
URI=$(port)
start_dst "$URI" --disk "$TMP/other.img"
refused "migrate: --disk on the destination without --copy-storage is refused" 64 "is for a migration with --copy-storage"

# A DISK record that lies outside the disk (tests/migrate_proxy.py rewrites
# the first one's disk index and fixes its checksum) is refused.
start_dst "unix:$TMP/mig.sock" --disk "$TMP/dst.img"
rm -f "$TMP/proxy.sock" "$TMP/proxy.out"
# DISK: u64 offset, u32 length, u32 disk
python3 "$POPEK_ROOT/tests/migrate_proxy.py" "$TMP/proxy.sock" "$TMP/mig.sock" set:7:12:4:7 >"$TMP/proxy.out" &
PROXY=$!
for _ in $(seq 100); do grep -q listening "$TMP/proxy.out" 2>/dev/null && break; sleep 0.05; done
URI=unix:$TMP/proxy.sock
refused "migrate --copy-storage: a DISK record outside the disks is refused" 65 "a DISK record lies outside the 1 disk copied" --copy-storage
wait $PROXY
kill $SRC_PID 2>/dev/null
wait $SRC_PID 2>/dev/null
