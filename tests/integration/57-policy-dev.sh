# Policy rules on device requests (docs/policy.md): disk deny, limit and
# pause, entropy and console deny/modify, on both engines with test guests;
# malformed and undeliverable rules refused. Linux-level disk rules: 71-*.
export POPEK_RUNTIME_DIR=$TMP/run
DP=$GUESTS/devpolicy.elf
P=$POPEK_ROOT/build/popek
img=$TMP/pdev.img
sector_sum() { dd if="$img" bs=512 skip="$1" count="${2:-1}" status=none | md5sum | cut -d' ' -f1; }

printf 'deny disk write sectors 0-2047   # the guest write fails, the file is untouched\n' >"$TMP/pdeny.policy"
printf 'limit disk ops 100/s burst 50\n' >"$TMP/pops.policy"
printf 'limit disk bytes 2M/s burst 512K\n' >"$TMP/pbytes.policy"
# GCRA: n requests of cost c take (n*c - burst) / rate seconds; the guest
# measures its own time. Held within 10 % either way.
within() { # NAME MEASURED_TIME_US UNITS BURST RATE
	python3 - "$2" "$3" "$4" "$5" <<'PY'
import sys
us, units, burst, rate = map(float, sys.argv[1:])
want = (units - burst) / rate * 1e6
sys.exit(0 if abs(us - want) <= 0.1 * want else 1)
PY
}
for e in kvm soft; do
	export POPEK=$POPEK_ROOT/build/popek-san
	dd if=/dev/zero of="$img" bs=1M count=2 status=none
	before=$(md5sum <"$img")
	run_vm pdev-$e-deny run --engine $e --kernel "$DP" --cmdline "write sector=7 sectors=2" \
		--disk "$img" --policy "$TMP/pdeny.policy" --audit "$TMP/pdev-$e.jsonl"
	expect "policy-dev/$e: deny disk write sectors 0-2047: the guest's write gets an I/O error" 1 \
		"write 7: status 1"
	if [ "$(md5sum <"$img")" = "$before" ]; then pass "policy-dev/$e: the image is unchanged"; else fail "policy-dev/$e: image changed" "$(od -Ax -tx1 -j 3584 -N 16 "$img")"; fi
	if grep -q '"device":"virtio-blk0","class":"disk","op":"write","sector":7,"len":1024,"verdict":"deny","rule":1' "$TMP/pdev-$e.jsonl"; then
		pass "policy-dev/$e: the denied write is in the audit log"
	else
		fail "policy-dev/$e: audit" "$(head -c 400 "$TMP/pdev-$e.jsonl")"
	fi
	run_vm pdev-$e-allow run --engine $e --kernel "$DP" --cmdline "write sector=2048" \
		--disk "$img" --policy "$TMP/pdeny.policy"
	expect "policy-dev/$e: a write past the range goes through" 1 "write 2048: status 0"
	if [ "$(sector_sum 2048)" = "$(head -c 512 /dev/zero | tr '\0' '\245' | md5sum | cut -d' ' -f1)" ]; then
		pass "policy-dev/$e: and reaches the image"
	else
		fail "policy-dev/$e: allowed write" "sector 2048 does not hold the guest's bytes"
	fi
	printf 'deny disk flush dev virtio-blk0\n' >"$TMP/pflush.policy"
	run_vm pdev-$e-flush run --engine $e --kernel "$DP" --cmdline "write sector=9" \
		--disk "$img" --policy "$TMP/pflush.policy"
	expect "policy-dev/$e: deny disk flush dev virtio-blk0 fails the flush only" 1 \
		"write 9: status 0.*flush: status 1|flush: status 1"

	printf 'stop disk write sectors 7\n' >"$TMP/pstop.policy"
	run_vm pdev-$e-stop run --engine $e --kernel "$DP" --cmdline "write sector=7" \
		--disk "$img" --policy "$TMP/pstop.policy"
	expect_err "policy-dev/$e: stop disk write ends the VM (exit 72)" 72 \
		"stopped by policy rule on line 1 \(disk write 0x7 on virtio-blk0\)"
	# kvm: a vcpu match turns ioeventfd off, so the request comes from vCPU 0
	printf 'deny disk write vcpu 0\n' >"$TMP/pvcpu.policy"
	run_vm pdev-$e-vcpu run --engine $e --kernel "$DP" --cmdline "write sector=3" \
		--disk "$img" --policy "$TMP/pvcpu.policy"
	expect "policy-dev/$e: deny disk write vcpu 0 sees the request on its vCPU" 1 "write 3: status 1"

	unset POPEK # rate measurements without the sanitizer's overhead
	run_vm pdev-$e-ops run --engine $e --kernel "$DP" --cmdline "rate ops=450" --disk "$img" \
		--policy "$TMP/pops.policy"
	us=$(sed -n 's/^rate: [0-9]* ops in \([0-9]*\) us.*/\1/p' "$OUT")
	if [ "$RC" -eq 1 ] && [ -n "$us" ] && within ops "$us" 450 50 100; then
		pass "policy-dev/$e: limit disk ops 100/s burst 50 holds: 450 reads in $us us"
	else
		fail "policy-dev/$e: limit ops" "exit $RC, $(cat "$OUT" | tr '\n' ' ') (want 4000000 us +-10 %)"
	fi
	run_vm pdev-$e-bytes run --engine $e --kernel "$DP" --cmdline "rate ops=160 bytes=65536" \
		--disk "$img" --policy "$TMP/pbytes.policy"
	us=$(sed -n 's/^rate: [0-9]* ops in \([0-9]*\) us.*/\1/p' "$OUT")
	if [ "$RC" -eq 1 ] && [ -n "$us" ] && within bytes "$us" $((160 * 65536)) 524288 2097152; then
		pass "policy-dev/$e: limit disk bytes 2M/s burst 512K holds: 10 MiB read in $us us"
	else
		fail "policy-dev/$e: limit bytes" "exit $RC, $(cat "$OUT" | tr '\n' ' ') (want 4750000 us +-10 %)"
	fi
	export POPEK=$POPEK_ROOT/build/popek-san

	printf 'deny rng\n' >"$TMP/prng.policy"
	run_vm pdev-$e-rng run --engine $e --kernel "$DP" --cmdline "rng len=16" --policy "$TMP/prng.policy"
	expect "policy-dev/$e: deny rng: the entropy request comes back empty" 1 "rng: 0 bytes $"
	printf 'modify rng bytes "popek" at 2\n' >"$TMP/prngmod.policy"
	run_vm pdev-$e-rngmod run --engine $e --kernel "$DP" --cmdline "rng len=16" --policy "$TMP/prngmod.policy"
	expect "policy-dev/$e: modify rng bytes \"popek\" at 2 patches the entropy" 1 \
		"rng: 16 bytes [0-9a-f]{4}706f70656b[0-9a-f]{18}$"
	run_vm pdev-$e-rngnone run --engine $e --kernel "$DP" --cmdline "rng len=16"
	expect "policy-dev/$e: without a policy 16 bytes of entropy arrive" 1 "rng: 16 bytes [0-9a-f]{32}$"

	printf 'modify console write contains "H" bytes "J" dev uart0\ndeny console write contains "!"\n' >"$TMP/pcon.policy"
	run_vm pdev-$e-con run --engine $e --kernel "$GUESTS/hello.elf" --policy "$TMP/pcon.policy"
	expect "policy-dev/$e: console modify and deny on UART output" 1 "^Jello"
	if ! grep -q '!' "$OUT"; then pass "policy-dev/$e: the denied byte never reached the console"; else fail "policy-dev/$e: console deny" "$(head -c 200 "$OUT")"; fi
	unset POPEK
done

# pause disk write sectors 0-0: the VM pauses before the write reaches the
# image; popek resume lets it happen.
printf 'pause disk write sectors 0-0\n' >"$TMP/ppause.policy"
wait_paused() {
	for _ in $(seq 100); do "$P" ls 2>/dev/null | grep -q "$1 .* paused" && break; sleep 0.05; done
}
for e in kvm soft; do
	dd if=/dev/zero of="$img" bs=1M count=2 status=none
	"$P" run --engine $e --name pdev-pause-$e --kernel "$DP" --cmdline "write sector=0" \
		--disk "$img" --policy "$TMP/ppause.policy" >"$TMP/ppause.out" 2>"$TMP/ppause.err" </dev/null &
	pid=$!
	wait_paused pdev-pause-$e
	sleep 0.3
	if "$P" ls | grep -q "pdev-pause-$e .* paused" && ! grep -q "write 0" "$TMP/ppause.out" &&
		[ "$(sector_sum 0)" = "$(head -c 512 /dev/zero | md5sum | cut -d' ' -f1)" ]; then
		pass "policy-dev/$e: pause disk write sectors 0-0 pauses the VM before the write"
	else
		fail "policy-dev/$e: pause" "$("$P" ls 2>&1) / $(tail -c 300 "$TMP/ppause.out") / $(od -Ax -tx1 -N 8 "$img" | head -1)"
	fi
	"$P" resume pdev-pause-$e
	wait $pid
	rc=$?
	if [ $rc -eq 1 ] && grep -q "write 0: status 0" "$TMP/ppause.out" &&
		[ "$(od -An -tx1 -N 1 "$img" | tr -d ' ')" = a5 ]; then
		pass "policy-dev/$e: popek resume continues it and the write happens"
	else
		fail "policy-dev/$e: resume" "exit $rc: $(tail -c 300 "$TMP/ppause.out") $(tail -c 300 "$TMP/ppause.err")"
	fi
done

# Malformed new syntax: refused before the VM starts, with line:column.
bad() { # NAME TEXT PATTERN
	printf '%b' "$2" >"$TMP/pbad.policy"
	run_vm pdev-bad run --engine soft --kernel "$GUESTS/hello.elf" --policy "$TMP/pbad.policy"
	expect_err "policy-dev: $1 refused (exit 64)" 64 "$3"
}
bad "a rate without /s" "# x\nlimit disk ops 200 burst 5\n" "pbad.policy:2:16: expected a rate"
bad "limit without a rate" "limit disk sectors 0-9\n" "pbad.policy:1:23: expected ops RATE or bytes RATE"
bad "contains on a disk read" "deny disk read contains \"x\"\n" "pbad.policy:1:28: expected write"
bad "an unterminated string" "modify console bytes \"abc\n" "pbad.policy:1:22: expected bytes"
bad "a sector range backwards" "deny disk sectors 9-1\n" "pbad.policy:1:19: expected a sectors range"
# Rules the machine can never deliver: refused with the reason.
bad "a rule on the PIT (inside the engine)" "deny pio port 0x40-0x43\n" \
	"rule on line 1 \(deny pio\) can never match: the PIT is emulated inside the soft engine"
bad "a rule on a device the VM lacks" "deny disk dev virtio-blk3\n" \
	"can never match: this VM has no disk device virtio-blk3"
bad "a vCPU the VM lacks" "deny disk vcpu 1\n" "can never match: this VM has 1 vCPU$"
bad "a vCPU on console input" "log console read vcpu 0\n" "console input comes from no vCPU"
bad "a discard rule (virtio-blk offers no discard)" "deny disk discard\n" "offers no discard"
unset POPEK_RUNTIME_DIR

# Linux (default image, soft engine): the guest's dd to a denied range gets an
# I/O error and the host file's range is unchanged, a disk ops limit holds
# for 4 KiB direct reads, entropy and console output are modified.
IMAGES=$POPEK_ROOT/images
if [ ! -f "$IMAGES/vmlinux" ] || [ ! -f "$IMAGES/initramfs.cpio.gz" ]; then
	fail "policy-dev/linux" "images/ lacks the default image: run 'make image' (make test does)"
else
	disk=$TMP/pdev-linux.img
	truncate -s 16M "$disk"
	dd if=/dev/urandom of="$disk" bs=4096 count=4 conv=notrunc status=none
	range_sum() { dd if="$disk" bs=512 skip=8 count=8 status=none | md5sum; }
	before=$(range_sum)
	cat >"$TMP/pdev-linux.policy" <<'POL'
deny disk write sectors 8-15                  # the disk's second 4 KiB block
limit disk ops 25/s burst 10 dev virtio-blk0
modify console write contains "%" bytes "#"
modify rng bytes 0x00000000
POL
	export POPEK_RUNTIME_DIR=$TMP/run
	POPEK_SESSION_ARGS="--policy $TMP/pdev-linux.policy --audit $TMP/pdev-linux.jsonl" \
		python3 "$POPEK_ROOT/tests/linux/session.py" "$POPEK_ROOT/build/popek" "$IMAGES" soft 1 \
		"$disk" 300 policy >"$TMP/pdev-linux.json"
	if python3 - "$TMP/pdev-linux.json" <<'PY'; then
import json, sys
r = json.load(open(sys.argv[1]))
if "error" in r:
    print("  " + r["error"] + " | " + r.get("tail", "")[-300:] + " | " + r.get("stderr", ""))
    sys.exit(1)
problems = []
if "Input/output error" not in r["dd_denied"] or not r["dd_denied"].endswith("rc=1"):
    problems.append("denied dd: " + r["dd_denied"])
if not r["dd_allowed"].endswith("rc=0"): problems.append("allowed dd: " + r["dd_allowed"])
if r["disk_head"] != r["disk_token"]: problems.append("disk: " + r["disk_head"])
a, b = map(float, r["rate"].split())
want = (120 - 10) / 25
if abs((b - a) - want) > 0.1 * want: problems.append("120 reads took %.2f s, want %.2f s +-10 %%" % (b - a, want))
if not r["entropy"].startswith("00000000") or len(set(r["entropy"][8:])) < 4:
    problems.append("entropy: " + r["entropy"])
if r["console"] != "50#": problems.append("console: " + r["console"])
if r["exit_code"] != 0: problems.append("exit code %d" % r["exit_code"])
print("  120 direct 4 KiB reads at 25/s burst 10 took %.2f s (want %.2f)" % (b - a, want))
if problems:
    print("  " + "; ".join(problems))
    sys.exit(1)
PY
		pass "policy-dev/linux: dd to a denied range fails with an I/O error, limit disk ops holds, rng and console modified"
	else
		fail "policy-dev/linux" "see above"
	fi
	if [ "$(range_sum)" = "$before" ]; then pass "policy-dev/linux: the denied range of the host file is unchanged"; else fail "policy-dev/linux: denied range changed" "checksums differ"; fi
	if grep -q '"device":"virtio-blk0","class":"disk","op":"write","sector":8,"len":4096,"verdict":"deny"' "$TMP/pdev-linux.jsonl"; then
		pass "policy-dev/linux: the denied write is in the audit log"
	else
		fail "policy-dev/linux: audit" "$(grep -m3 disk "$TMP/pdev-linux.jsonl")"
	fi
	unset POPEK_RUNTIME_DIR
fi
