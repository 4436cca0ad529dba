# Snapshots: a guest saved mid-computation and restored finishes with the same
# result as an uninterrupted run; clones; corrupt snapshots are refused.
export POPEK_RUNTIME_DIR=$TMP/run
P=$POPEK_ROOT/build/popek
LR="$GUESTS/longrun.elf"
ARGS="rounds=40"
run_vm snap-ref run --engine kvm --kernel "$LR" --cmdline "$ARGS"
want=$(grep -o "result 0x[0-9a-f]*" "$OUT")
[ -n "$want" ] || fail "snapshot: reference run" "no result: $(tail -c 200 "$OUT")"

# snapshot_midway ENGINE DIR [--compress]: start longrun, snapshot it at round 10, stop it.
snapshot_midway() {
	local engine=$1 dir=$2 extra=${3:-} con=$TMP/snap-$RANDOM.console
	"$P" run --engine "$engine" --name snapsrc --kernel "$LR" --cmdline "$ARGS" \
		--console "file:$con" ${RUN_EXTRA:-} >/dev/null 2>&1 </dev/null &
	local pid=$!
	for _ in $(seq 200); do grep -q "round 10$" "$con" 2>/dev/null && break; sleep 0.02; done
	"$P" snapshot snapsrc "$dir" --stop $extra 2>"$TMP/snapcmd.err"
	local src=$?
	wait $pid
	SNAP_SRC_RC=$?
	SNAP_OK=$src
	grep -q "result" "$con" && SNAP_OK=99 # finished before the snapshot: test proves nothing
}

for variant in plain compress; do
	flag=""
	[ $variant = compress ] && flag=--compress
	snapshot_midway kvm "$TMP/snap-$variant" $flag
	if [ "$SNAP_OK" = 0 ] && [ "$SNAP_SRC_RC" = 0 ]; then
		pass "snapshot ($variant): taken mid-computation, VM stopped"
	else
		fail "snapshot ($variant)" "snapshot rc $SNAP_OK, VM rc $SNAP_SRC_RC: $(cat "$TMP/snapcmd.err")"
	fi
	run_vm restore-$variant restore "$TMP/snap-$variant"
	expect "snapshot ($variant): restored VM finishes with the uninterrupted result" 1 "$want"
done

# Across engines: the same VM continues on the other CPU engine. Long enough
# that the soft engine is still computing when the snapshot request arrives.
ARGS="rounds=200 iters=200000"
run_vm snap-refx run --engine kvm --kernel "$LR" --cmdline "$ARGS"
wantx=$(grep -o "result 0x[0-9a-f]*" "$OUT")
for pair in kvm:soft soft:kvm soft:soft; do
	from=${pair%%:*} to=${pair##*:}
	snapshot_midway "$from" "$TMP/snap-$from-$to"
	run_vm restore-$from-$to restore "$TMP/snap-$from-$to" --engine "$to"
	if [ "$SNAP_OK" != 0 ]; then
		fail "snapshot on $from, restore on $to" "snapshot rc $SNAP_OK: $(cat "$TMP/snapcmd.err")"
	else
		expect "snapshot on $from, restore on $to: same result" 1 "$wantx"
	fi
done
ARGS="rounds=40"

# An optional device (--device) and its state travel with the snapshot.
RUN_EXTRA="--device pc-testdev" snapshot_midway soft "$TMP/snap-dev"
run_vm restore-dev restore "$TMP/snap-dev"
if [ "$SNAP_OK" != 0 ]; then
	fail "snapshot with --device pc-testdev" "snapshot rc $SNAP_OK: $(cat "$TMP/snapcmd.err")"
elif ! python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert m["config"]["devices"] == ["pc-testdev"]' "$TMP/snap-dev/snapshot.json"; then
	fail "snapshot with --device pc-testdev" "config.devices missing: $(grep -A2 '"devices"' "$TMP/snap-dev/snapshot.json" | head -5)"
else
	expect "snapshot with --device pc-testdev: restored with the device, same result" 1 "$want"
fi
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); m["config"]["devices"]=[]; json.dump(m, open(sys.argv[1], "w"))' "$TMP/snap-dev/snapshot.json"
run_vm restore-nodev restore "$TMP/snap-dev"
expect_err "snapshot: device state without the device is refused" 65 "holds devices this VM does not have"

sparse=$(du -k "$TMP/snap-plain/memory.bin" | cut -f1)
if [ "$sparse" -lt 16384 ]; then pass "snapshot: memory image is sparse (${sparse} KiB on disk for 128 MiB)"; else fail "snapshot: sparse" "${sparse} KiB"; fi

run_vm restore-clones restore "$TMP/snap-plain" --clones 3 --name cl --console "file:$TMP/clone"
ok=0
for i in 1 2 3; do grep -q "$want" "$TMP/clone.$i" && ok=$((ok + 1)); done
if [ "$RC" = 1 ] && [ $ok = 3 ]; then pass "snapshot: three clones each finish with the right result"; else fail "snapshot: clones" "rc $RC, $ok of 3 right"; fi

# A referenced disk that changed since the snapshot is refused unless forced.
truncate -s 4M "$TMP/snapdisk.img"
"$P" run --engine kvm --name snapdisk --kernel "$LR" --cmdline "rounds=100000" --disk "$TMP/snapdisk.img" \
	--console "file:$TMP/snapdisk.console" >/dev/null 2>&1 </dev/null &
pid=$!
for _ in $(seq 100); do grep -q "round 2$" "$TMP/snapdisk.console" 2>/dev/null && break; sleep 0.02; done
"$P" snapshot snapdisk "$TMP/snap-disk" --stop 2>/dev/null
wait $pid
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["disks"]; assert d[0]["path"]==sys.argv[2]' \
	"$TMP/snap-disk/snapshot.json" "$(realpath "$TMP/snapdisk.img")" 2>/dev/null; then pass "snapshot: disk image referenced by path"; else fail "snapshot: disk reference" "$(grep -A3 disks "$TMP/snap-disk/snapshot.json")"; fi
printf 'changed' | dd of="$TMP/snapdisk.img" bs=1 seek=100 conv=notrunc 2>/dev/null
VM_TIMEOUT=2 run_vm snapdisk-changed restore "$TMP/snap-disk"
expect_err "snapshot: changed disk refused" 65 "changed since the snapshot"
VM_TIMEOUT=2 run_vm snapdisk-forced restore "$TMP/snap-disk" --force
if [ "$RC" = 124 ] && grep -q "round" "$OUT"; then pass "snapshot: --force restores despite the changed disk"; else fail "snapshot: --force" "rc $RC $(tail -c 200 "$ERR")"; fi

# Corruption is refused before any guest code runs (exit 65).
cp -r "$TMP/snap-plain" "$TMP/bad1"
printf '\x55' | dd of="$TMP/bad1/memory.bin" bs=1 seek=$((0x100010)) conv=notrunc 2>/dev/null
run_vm bad1 restore "$TMP/bad1"
expect_err "snapshot: corrupt memory refused" 65 "checksum"
cp -r "$TMP/snap-plain" "$TMP/bad2"
truncate -s 1M "$TMP/bad2/memory.bin"
run_vm bad2 restore "$TMP/bad2"
expect_err "snapshot: truncated memory refused" 65 "truncated"
cp -r "$TMP/snap-plain" "$TMP/bad3"
printf '\xff' | dd of="$TMP/bad3/state.bin" bs=1 seek=200 conv=notrunc 2>/dev/null
run_vm bad3 restore "$TMP/bad3"
expect_err "snapshot: corrupt state refused" 65 "state.bin"
cp -r "$TMP/snap-compress" "$TMP/bad4"
truncate -s 100 "$TMP/bad4/memory.zst"
run_vm bad4 restore "$TMP/bad4"
expect_err "snapshot: truncated compressed memory refused" 65 "truncated|corrupt"
mkdir -p "$TMP/bad5" && echo '{"format":"qemu-savevm"}' >"$TMP/bad5/snapshot.json"
run_vm bad5 restore "$TMP/bad5"
expect_err "snapshot: foreign snapshot refused" 65 "not a popek snapshot"
run_vm bad6 restore "$TMP/nothing-here"
expect_err "snapshot: missing snapshot named" 65 "nothing-here"
unset POPEK_RUNTIME_DIR
