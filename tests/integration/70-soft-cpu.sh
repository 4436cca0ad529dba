# The soft engine's own checks (the guests themselves run on both engines in
# 30-guests.sh): trap statistics and the differential CPU tester (bounded;
# `make fuzz-cpu` runs millions).
run_vm soft-stats run --engine soft --kernel "$GUESTS/ring3.elf" --stats
if python3 - "$ERR" <<'PY'; then pass "soft: --stats reports traps by class"; else fail "soft: --stats" "$(tail -c 300 "$ERR")"; fi
import json, sys
line = [l for l in open(sys.argv[1]) if l.startswith("{")][-1]
s = json.loads(line)
e = s["per_vcpu"][0]["engine"]
assert s["engine"] == "soft", s
assert e["instructions"] > 1000000 and e["classes"]["privileged"] > 0, e
assert e["traps"]["out"] > 0 and e["traps"]["syscall"] > 0 and e["tlb"]["hits"] > 0, e
assert e["blocks"]["decoded"] > 100 and e["blocks"]["revalidated"] > 0, e
PY

# cpubench's integer loop in ring 0 (bench/soft-cpu's CPL0 workload) computes what it does
# in ring 3 (the guest fails unless both give the known checksum).
run_vm soft-cpubench-int0 run --engine soft --kernel "$GUESTS/cpubench.elf" --cmdline "int int0"
expect "soft: cpubench's loop gives the known checksum in ring 0 and ring 3" 1 \
	"int0 checksum 0x29f1e4da8019c199 cycles"

out=$("$POPEK_ROOT/build/cpudiff" -n 20000 2>&1)
if [ $? -eq 0 ]; then
	pass "soft: differential CPU test ($(tail -1 <<<"$out"))"
else
	fail "soft: differential CPU test" "$(grep -m5 -A1 MISMATCH <<<"$out" | tr '\n' ' ')"
fi
# the same cases with every block translated (cpudiff -j fails if none was)
out=$("$POPEK_ROOT/build/cpudiff" -j -n 20000 2>&1)
if [ $? -eq 0 ]; then
	pass "soft: differential CPU test, translator on ($(tail -2 <<<"$out" | tr '\n' ' '))"
else
	fail "soft: differential CPU test, translator on" \
		"$(grep -m5 -A1 'MISMATCH\|translated' <<<"$out" | tr '\n' ' ')"
fi

# Code a device wrote (a virtio-blk read into a page the guest then calls) runs
# at once, interpreted and translated: devices tell the engine what they wrote.
truncate -s 4096 "$TMP/dmacode.img"
dmacode_runs "soft: code written by a device runs at once" "$TMP/dmacode.img"

# A crash after #UD names the refused instruction (RIP, bytes, opcode, class).
run_vm soft-ud run --engine soft --kernel "$GUESTS/triplefault.elf"
expect_err "soft: crash report names the instruction that raised #UD" 70 \
	"last raised #UD at RIP 0x[0-9a-f]+, bytes \[0f 0b\], opcode 0f 0b, class innocuous"

# XSAVE/XRSTOR/XGETBV/XSETBV (x87 and SSE state; soft only: nested PVM's
# /dev/kvm fails to emulate the guest's kernel-mode XGETBV).
for bin in popek popek-san; do
	POPEK=$POPEK_ROOT/build/$bin run_vm soft-$bin-xsave run --engine soft --kernel "$GUESTS/xsave.elf"
	expect "soft/$bin: XSAVE feature set for x87 and SSE" 1 "PASS xsave"
done

# Linux enables XSAVE and reaches init with its context switches on XSAVEOPT/XRSTOR.
if [ -f "$POPEK_ROOT/images/vmlinux" ]; then
	log=$TMP/linux-xsave.txt
	"$POPEK_ROOT/build/popek" run --engine soft --kernel "$POPEK_ROOT/images/vmlinux" \
		--initrd "$POPEK_ROOT/images/initramfs.cpio.gz" --console "file:$log" \
		--cmdline "console=ttyS0 panic=-1 cryptomgr.notests" </dev/null >/dev/null 2>&1 &
	pid=$!
	wait_for "$log" "popek-guest: init ready" $pid
	kill $pid 2>/dev/null
	wait $pid 2>/dev/null
	if grep -q "x86/fpu: Enabled xstate features 0x3, context size is 576 bytes, using 'standard' format" "$log" &&
		grep -q "popek-guest: init ready" "$log"; then
		pass "soft: Linux enables XSAVE (x87|SSE, 576 bytes) and reaches init"
	else
		fail "soft: Linux with XSAVE" "$(grep -m2 -E 'x86/fpu|init ready' "$log" | tr '\n' ' '; tail -c 200 "$log")"
	fi
fi
