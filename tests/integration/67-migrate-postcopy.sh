# Post-copy migration (docs/migration.md, --postcopy): memwrite rewriting
# 4 MiB without pause does not converge in one round at --max-downtime 0;
# moved with --postcopy over tcp on loopback (the push paced to 4 MB/s, so
# that the guest there touches pages before they come and pulls them) it
# finishes with the uninterrupted result, on soft, on kvm and kvm → soft. A connection
# cut after the handover is the destination's failure (exit 71, named) and
# the source keeps its stopped copy; a DISCARD record outside RAM is refused
# before the guest runs there, and the source runs on.
export POPEK_RUNTIME_DIR=$TMP/run
P=$POPEK_ROOT/build/popek
MW="$GUESTS/memwrite.elf"
ARGS="rounds=1500 pages=1024 iters=300000"
run_vm pc-ref run --engine soft --kernel "$MW" --cmdline "$ARGS"
want=$(grep -o "result 0x[0-9a-f]*" "$OUT")
[ -n "$want" ] || fail "postcopy: reference run" "no result: $(tail -c 200 "$OUT")"

# start_src ENGINE [ARGS]: memwrite as VM "src", once it is at round 3.
start_src() {
	SRC_CON=$TMP/pc-src-$RANDOM.con
	"$P" run --engine "$1" --name src --kernel "$MW" --cmdline "${2:-$ARGS}" \
		--console "file:$SRC_CON" >/dev/null 2>"$TMP/src.err" </dev/null &
	SRC_PID=$!
	for _ in $(seq 400); do grep -aq "round 3$" "$SRC_CON" 2>/dev/null && break; sleep 0.05; done
}

# start_dst URI [ENGINE]: popek receive as VM "dst".
start_dst() {
	DST_CON=$TMP/pc-dst-$RANDOM.con
	"$P" receive --listen "$1" ${2:+--engine $2} --name dst --console "file:$DST_CON" \
		>/dev/null 2>"$TMP/dst.err" </dev/null &
	DST_PID=$!
	for _ in $(seq 100); do grep -q "waiting for a VM" "$TMP/dst.err" 2>/dev/null && break; sleep 0.05; done
}

POST="--postcopy --max-downtime 0 --bandwidth 4M"

# postcopy_case NAME FROM TO
postcopy_case() {
	local name=$1 uri="tcp:127.0.0.1:47$((RANDOM % 900 + 100))"
	start_dst "$uri" "$3"
	start_src "$2"
	timeout 120 "$P" migrate src "$uri" $POST 2>"$TMP/mig.err"
	local mrc=$?
	timeout 60 tail --pid=$SRC_PID -f /dev/null
	wait $SRC_PID
	local src=$?
	timeout 120 tail --pid=$DST_PID -f /dev/null
	wait $DST_PID
	local dst=$?
	local pulled
	pulled=$(grep -o "post-copy ([0-9]* pages pulled)" "$TMP/mig.err" | grep -o "[0-9]*")
	if grep -aq "result" "$SRC_CON"; then
		fail "$name" "the guest finished before the migration: the test proves nothing"
	elif [ $mrc != 0 ] || [ $src != 0 ] || [ $dst != 1 ]; then
		fail "$name" "migrate rc $mrc, source rc $src, destination rc $dst: $(tail -c 300 "$TMP/mig.err") $(tail -c 300 "$TMP/dst.err")"
	elif ! grep -q "$want" "$DST_CON"; then
		fail "$name" "wrong or no result on the destination: $(tail -c 200 "$DST_CON")"
	elif grep -q "auto-converge" "$TMP/mig.err" || ! grep -q "in 1 rounds and post-copy" "$TMP/mig.err"; then
		fail "$name" "not one round and post-copy: $(tail -c 400 "$TMP/mig.err")"
	elif [ "${pulled:-0}" -lt 1 ] || ! grep -q "post-copy complete" "$TMP/dst.err"; then
		fail "$name" "no page pulled on first touch, or the push did not complete: $(tail -c 300 "$TMP/mig.err") $(tail -c 300 "$TMP/dst.err")"
	else
		pass "$name: finishes there with the uninterrupted result ($pulled pages pulled on first touch)"
	fi
}

postcopy_case "migrate --postcopy soft→soft over tcp" soft soft
postcopy_case "migrate --postcopy kvm→kvm over tcp" kvm kvm
postcopy_case "migrate --postcopy kvm→soft over tcp" kvm soft

# --postcopy that converges (a generous --max-downtime): the last round goes
# before the handover, and the destination, told post-copy by the HELLO, gets
# a POSTCOPY_END with no pages and runs on.
uri="tcp:127.0.0.1:47$((RANDOM % 900 + 100))"
start_dst "$uri" soft
start_src soft
timeout 120 "$P" migrate src "$uri" --postcopy --max-downtime 60000 2>"$TMP/mig.err"
mrc=$?
timeout 60 tail --pid=$SRC_PID -f /dev/null
wait $SRC_PID
src=$?
timeout 120 tail --pid=$DST_PID -f /dev/null
wait $DST_PID
dst=$?
if [ $mrc = 0 ] && [ $src = 0 ] && [ $dst = 1 ] && grep -q "$want" "$DST_CON" &&
	grep -q "migrated to .* in [0-9]* rounds," "$TMP/mig.err"; then
	pass "migrate --postcopy that converges in pre-copy: the destination runs on to the uninterrupted result"
else
	fail "migrate --postcopy that converges" "migrate rc $mrc, source rc $src, destination rc $dst: $(tail -c 300 "$TMP/mig.err") $(tail -c 300 "$TMP/dst.err") $(tail -c 100 "$DST_CON")"
fi


# proxy MODE: tests/migrate_proxy.py on $TMP/pc-proxy.sock, to a destination
# on $TMP/pc-mig.sock.
proxy() {
	rm -f "$TMP/pcproxy.out"
	python3 "$POPEK_ROOT/tests/migrate_proxy.py" "$TMP/pc-proxy.sock" "$TMP/pc-mig.sock" "$1" \
		>"$TMP/pcproxy.out" &
	PROXY=$!
	for _ in $(seq 100); do grep -q listening "$TMP/pcproxy.out" 2>/dev/null && break; sleep 0.05; done
}
# For the failures: a source that computes for minutes, so that it is still
# running when its fate is looked at.
LONG="rounds=1000000 pages=1024 iters=300000"
last_round() { grep -ao "round [0-9]*$" "$SRC_CON" | tail -1 | grep -o "[0-9]*"; }

# Cut after 9 MiB: round 1 (~7 MiB) and the handover are through, the push
# (~4 MiB) is not.
start_dst "unix:$TMP/pc-mig.sock" soft
proxy cut:9437184
start_src soft "$LONG"
timeout 120 "$P" migrate src "unix:$TMP/pc-proxy.sock" $POST 2>"$TMP/mig.err"
rc=$?
timeout 60 tail --pid=$DST_PID -f /dev/null
wait $DST_PID
drc=$?
wait $PROXY
n0=$(last_round)
sleep 1
if [ $rc = 71 ] && [ $drc = 71 ] &&
	grep -q "post-copy: the connection to the source broke with [0-9]* pages still there.*the VM cannot continue" "$TMP/dst.err" &&
	grep -q "its stopped copy is kept here" "$TMP/mig.err" && grep -q "the VM stays stopped here" "$TMP/src.err" &&
	kill -0 $SRC_PID 2>/dev/null && [ "$(last_round)" = "$n0" ] && ! grep -aq result "$DST_CON"; then
	pass "migrate --postcopy: a connection cut after the handover stops the destination (exit 71, named); the source keeps its stopped copy and says so"
else
	fail "migrate --postcopy: cut after the handover" "migrate rc $rc, receive rc $drc, source rounds $n0 → $(last_round): $(tail -c 300 "$TMP/dst.err") / $(tail -c 300 "$TMP/mig.err") / $(tail -c 200 "$TMP/src.err")"
fi
kill $SRC_PID 2>/dev/null
wait $SRC_PID 2>/dev/null

# A DISCARD run outside RAM, well framed: refused before the guest runs
# there; the handover never came, so the source runs on.
start_dst "unix:$TMP/pc-mig.sock" soft
proxy set:8:0:8:1099511627776 # the first DISCARD run's offset: 1 TiB
start_src soft "$LONG"
timeout 120 "$P" migrate src "unix:$TMP/pc-proxy.sock" $POST 2>"$TMP/mig.err"
rc=$?
wait $DST_PID
drc=$?
wait $PROXY
if [ $rc = 71 ] && [ $drc = 65 ] && grep -q "DISCARD run lies outside" "$TMP/dst.err" &&
	[ ! -s "$DST_CON" ] && grep -q "keeps running here" "$TMP/mig.err" && grows_on $SRC_PID last_round; then
	pass "migrate --postcopy: a DISCARD run outside RAM is refused before the guest runs there; the source runs on"
else
	fail "migrate --postcopy: corrupt DISCARD" "migrate rc $rc, receive rc $drc: $(tail -c 300 "$TMP/dst.err") / $(tail -c 300 "$TMP/mig.err")"
fi
kill $SRC_PID 2>/dev/null
wait $SRC_PID 2>/dev/null

# Linux with virtio devices: the destination loads them before the pages of
# their rings have come (post-copy discarded them), and must not wait for
# those pages before the VM runs; the guest announces itself after the move.
if [ ! -f "$POPEK_ROOT/images/vmlinux" ]; then
	fail "migrate --postcopy: Linux with virtio-net" "images/ lacks the default image: run 'make image'"
else
	timeout 400 python3 "$POPEK_ROOT/tests/linux/migrate_net.py" "$P" "$POPEK_ROOT/images" "$TMP" \
		--postcopy --max-downtime 0 --bandwidth 8M >"$TMP/pc-garp.log" 2>&1
	scenario_report "$TMP/pc-garp.log" "migrate --postcopy: Linux with virtio-net" $?
fi
