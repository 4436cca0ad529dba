# Live policy (docs/policy.md, "Live replacement"): `popek policy NAME FILE`
# replaces a running VM's policy, `popek policy NAME` prints it, a malformed
# one is refused with its line and the old one stays; `popek trace` streams
# the actions (test guests; a Linux boot on soft); a stalled audit reader or
# trace client makes the ring drop (counted and reported) instead of stalling
# the guest. Both engines.
export POPEK_RUNTIME_DIR=$TMP/run
P=$POPEK_ROOT/build/popek
VMBIN=$POPEK_ROOT/build/popek-san

# wait_lines FILE PATTERN [N [TENTHS]]: until FILE has N lines matching PATTERN
# (not lib.sh's wait_for: the suites share one shell).
wait_lines() {
	local n
	for _ in $(seq "${4:-300}"); do
		n=$(grep -cE -- "$2" "$1" 2>/dev/null)
		[ "${n:-0}" -ge "${3:-1}" ] && return 0
		sleep 0.1
	done
	return 1
}

wait_running() {
	for _ in $(seq 300); do "$P" ls 2>/dev/null | grep -q "^$1 " && return 0; sleep 0.1; done
	return 1
}

printf '# the CMOS data port reads 0\nmodify pio read port 0x71 value 0x00\n' >"$TMP/zero.policy"
printf 'log pio port 0x70\ndeny pio port 0x71-0x70\n' >"$TMP/bad.policy"
printf '# nothing\n' >"$TMP/none.policy"
printf 'modify pio read port 0x71 value 0x0\n' >"$TMP/zero.canonical"

for e in kvm soft; do
	name=live-$e
	out=$TMP/$name.out
	"$VMBIN" run --engine $e --name $name --kernel "$GUESTS/cmos.elf" --cmdline watch \
		>"$out" 2>"$TMP/$name.err" </dev/null &
	vm=$!
	wait_running $name && wait_lines "$out" "register D = 0x80"
	"$P" trace $name --class pio >"$TMP/$name.trace" 2>"$TMP/$name.trace.err" &
	tracer=$!
	wait_lines "$TMP/$name.trace" '"device":"cmos-rtc"'
	if [ -z "$("$P" policy $name)" ]; then
		pass "policy-live/$e: a VM started without --policy prints an empty policy"
	else
		fail "policy-live/$e: empty policy" "$("$P" policy $name)"
	fi
	"$P" policy $name "$TMP/zero.policy" 2>"$TMP/$name.set"
	rc=$?
	if [ $rc -eq 0 ] && wait_lines "$out" "register D = 0x0$" 1 100; then
		pass "policy-live/$e: a policy replaced live takes effect (the guest reads 0 from port 0x71)"
	else
		fail "policy-live/$e: live replacement" "exit $rc: $(cat "$TMP/$name.set") / $(tail -c 200 "$out")"
	fi
	if "$P" policy $name | cmp -s - "$TMP/zero.canonical"; then
		pass "policy-live/$e: popek policy NAME prints the active policy in canonical form"
	else
		fail "policy-live/$e: print" "$("$P" policy $name 2>&1 | head -c 300)"
	fi
	"$P" policy $name "$TMP/bad.policy" 2>"$TMP/$name.bad"
	rc=$?
	sleep 0.2
	if [ $rc -ne 0 ] && grep -q "bad.policy:2:15: expected a port range" "$TMP/$name.bad" &&
		"$P" policy $name | cmp -s - "$TMP/zero.canonical" &&
		[ "$(grep -c 'register D = ' "$out")" -eq 2 ]; then
		pass "policy-live/$e: a malformed live policy is refused with FILE:LINE:COL, the old one stays"
	else
		fail "policy-live/$e: malformed" "exit $rc: $(cat "$TMP/$name.bad") / $(tail -c 200 "$out")"
	fi
	"$P" policy $name "$TMP/none.policy" 2>/dev/null
	if wait_lines "$out" "register D = 0x80" 2 100; then
		pass "policy-live/$e: replacing it again restores the device's value"
	else
		fail "policy-live/$e: second replacement" "$(tail -c 200 "$out")"
	fi
	"$P" stop $name
	wait $vm
	rc=$?
	timeout 10 tail --pid=$tracer -f /dev/null
	if python3 - "$TMP/$name.trace" <<'PY'; then
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines, "no trace lines"
assert all(l["class"] == "pio" and l["vcpu"] == 0 and l["ns"] > 0 for l in lines), lines[:3]
reads = [l for l in lines if l["device"] == "cmos-rtc" and l["op"] == "read" and l["port"] == 0x71]
verdicts = [(l["verdict"], l["value"]) for l in reads]
assert ("allow", 0x80) in verdicts and ("modify", 0) in verdicts, verdicts[:5]
first_mod = verdicts.index(("modify", 0))
last_mod = len(verdicts) - 1 - verdicts[::-1].index(("modify", 0))
assert all(v == ("modify", 0) for v in verdicts[first_mod:last_mod + 1]), "mixed verdicts"
assert verdicts[-1] == ("allow", 0x80), verdicts[-1]
writes = [l for l in lines if l["op"] == "write" and l["port"] == 0x70]
assert writes and all(l["value"] == 0x0d for l in writes)
PY
		pass "policy-live/$e: popek trace streamed the CMOS accesses with their verdicts, and ended with the VM"
	else
		fail "policy-live/$e: trace" "$(head -c 400 "$TMP/$name.trace") $(cat "$TMP/$name.trace.err")"
	fi
	if [ $rc -eq 0 ] && ! grep -qE 'Sanitizer|runtime error' "$TMP/$name.err"; then
		pass "policy-live/$e: the VM stopped cleanly"
	else
		fail "policy-live/$e: stop" "exit $rc: $(tail -c 300 "$TMP/$name.err")"
	fi

	# Hypercalls: paused at the first call, traced from there on.
	name=hc-$e
	printf 'pause hypercall nr 0\n' >"$TMP/hc.policy"
	"$VMBIN" run --engine $e --name $name --kernel "$GUESTS/hypercalls.elf" \
		--policy "$TMP/hc.policy" >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null &
	vm=$!
	for _ in $(seq 100); do "$P" ls 2>/dev/null | grep -q "$name .* paused" && break; sleep 0.05; done
	"$P" trace $name --class hypercall >"$TMP/$name.trace" 2>&1 &
	tracer=$!
	sleep 0.3
	"$P" resume $name
	wait $vm
	rc=$?
	timeout 10 tail --pid=$tracer -f /dev/null
	if [ $rc -eq 0 ] && python3 - "$TMP/$name.trace" <<'PY'; then
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
nrs = [l["nr"] for l in lines]
assert all(l["class"] == "hypercall" and l["device"] == "hypercall" for l in lines), lines[:2]
assert 1 in nrs and 2 in nrs and 4 in nrs and 3 in nrs, nrs
yields = [l for l in lines if l["nr"] == 4]
assert all(l["verdict"] == "allow" and l["value"] == 0 for l in yields), yields
PY
		pass "policy-live/$e: popek trace --class hypercall shows the guest's calls and results"
	else
		fail "policy-live/$e: hypercall trace" "exit $rc: $(head -c 400 "$TMP/$name.trace")"
	fi
done

# Floods: log-everything on the CMOS ports with the audit log going to a
# FIFO nobody reads. The guest must finish anyway; the log then says how
# many events it lost, and lines + lost = every access (2 per read, 2 more
# for the final check).
N=100000
printf 'log pio port 0x70-0x71\n' >"$TMP/log.policy"
for e in kvm soft; do
	fifo=$TMP/audit-$e.fifo
	rm -f "$fifo"
	mkfifo "$fifo"
	exec 7<>"$fifo"
	bin=$VMBIN
	[ $e = kvm ] && bin=$P # the plain build's seccomp allowlist too: audit writer thread
	"$bin" run --engine $e --kernel "$GUESTS/cmos.elf" --cmdline "flood=$N" \
		--policy "$TMP/log.policy" --audit "$fifo" >"$TMP/flood-$e.out" 2>"$TMP/flood-$e.err" </dev/null 7>&- &
	vm=$!
	if wait_lines "$TMP/flood-$e.out" "reads done" 1 600; then
		pass "policy-live/$e: a guest flooding logged port accesses runs on while the audit reader stalls"
	else
		fail "policy-live/$e: flood stalled" "$(tail -c 200 "$TMP/flood-$e.out")"
	fi
	cat "$fifo" >"$TMP/flood-$e.audit" 7>&- &
	reader=$!
	wait $vm
	rc=$?
	exec 7>&-
	wait $reader
	if [ $rc -eq 1 ] && python3 - "$TMP/flood-$e.audit" $((2 * N + 2)) <<'PY'; then
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
drops = sum(l["dropped"] for l in lines if "dropped" in l)
events = [l for l in lines if "dropped" not in l]
assert drops > 0, "no drops reported"
assert len(events) + drops == int(sys.argv[2]), (len(events), drops)
assert all(l["verdict"] == "log" and l["rule"] == 1 for l in events)
print("  %s: %d audit lines, %d dropped" % (sys.argv[1].split("-")[-1].split(".")[0], len(events), drops))
PY
		pass "policy-live/$e: the audit log reports the dropped events; written + dropped = every access"
	else
		fail "policy-live/$e: flood audit" "exit $rc: $(tail -c 300 "$TMP/flood-$e.audit") $(tail -c 200 "$TMP/flood-$e.err")"
	fi
done

# A trace client that stops reading (SIGSTOP) loses events, reported when it
# goes on; the guest does not wait for it. The plain build, jailed: the trace
# thread's system calls are in its allowlist.
for e in kvm soft; do
	name=tflood-$e
	"$P" run --engine $e --name $name --kernel "$GUESTS/cmos.elf" --cmdline "wait=1000 flood=$N" \
		>"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null &
	vm=$!
	wait_running $name
	"$P" trace $name --class pio >"$TMP/$name.trace" 2>&1 &
	tracer=$!
	sleep 0.2
	kill -STOP $tracer
	wait_lines "$TMP/$name.out" "reads done" 1 600
	ok=$?
	kill -CONT $tracer
	wait $vm
	timeout 10 tail --pid=$tracer -f /dev/null
	if [ $ok -eq 0 ] && grep -q '"dropped":[1-9]' "$TMP/$name.trace"; then
		pass "policy-live/$e: a stopped trace client drops events (reported to it) and the guest runs on"
	else
		fail "policy-live/$e: stopped tracer" "$ok: $(tail -c 300 "$TMP/$name.trace")"
	fi
done

# popek trace of a Linux boot (default image, soft): attached from the start
# until the shell prompt; port and MMIO actions of the platform's devices.
if [ -f "$POPEK_ROOT/images/vmlinux" ]; then
	sleep 300 | "$P" run --engine soft --name live-linux --mem 256M --cmdline +quiet \
		>"$TMP/linux.out" 2>"$TMP/linux.err" &
	for _ in $(seq 500); do "$P" trace live-linux >"$TMP/linux.trace" 2>/dev/null && break; sleep 0.01; done &
	tracer=$!
	wait_lines "$TMP/linux.out" "popek:/# " 1 1800
	ok=$?
	"$P" stop live-linux
	timeout 20 tail --pid=$tracer -f /dev/null
	if [ $ok -eq 0 ] && python3 - "$TMP/linux.trace" <<'PY'; then
import collections, json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
by = collections.Counter((l["class"], l["device"]) for l in lines if "dropped" not in l)
for want in (("pio", "pci-config"), ("pio", "uart"), ("pio", "cmos-rtc"), ("mmio", "virtio-console"),
             ("mmio", "virtio-rng")):
    assert by[want] > 0, (want, by.most_common(8))
print("  linux boot: %d events, %s" % (sum(by.values()), by.most_common(4)))
PY
		pass "policy-live: popek trace follows a Linux boot on soft (PCI, UART, CMOS, virtio)"
	else
		fail "policy-live: linux trace" "prompt $ok: $(head -c 300 "$TMP/linux.trace") $(tail -c 200 "$TMP/linux.err")"
	fi
else
	fail "policy-live: linux trace" "images/ lacks the default image: run 'make image'"
fi

# Requests the VM refuses.
"$VMBIN" run --engine soft --name live-bad --kernel "$GUESTS/cmos.elf" --cmdline watch \
	>/dev/null 2>&1 </dev/null &
vm=$!
wait_running live-bad
"$P" trace live-bad --class disk-of-nothing >"$TMP/badclass.out" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "policy class names" "$TMP/badclass.out"; then
	pass "policy-live: popek trace refuses an unknown class"
else
	fail "policy-live: unknown class" "exit $rc: $(cat "$TMP/badclass.out")"
fi
"$P" policy live-bad "$TMP/no-such.policy" 2>"$TMP/missing.out"
rc=$?
if [ $rc -eq 64 ] && grep -q "no-such.policy" "$TMP/missing.out"; then
	pass "policy-live: a missing file is refused by the client (exit 64)"
else
	fail "policy-live: missing file" "exit $rc: $(cat "$TMP/missing.out")"
fi
"$P" stop live-bad
wait $vm
unset POPEK_RUNTIME_DIR

# kvm: the VM starts with virtio notifications on ioeventfd (inside the
# kernel); a live rule that must meet disk requests on their vCPU takes them
# back, so they trap from then on and `deny disk read vcpu 0` fails the
# guest's next read.
name=live-kick
dd if=/dev/zero of="$TMP/$name.img" bs=64K count=1 status=none
"$VMBIN" run --engine kvm --name $name --kernel "$GUESTS/devpolicy.elf" --disk "$TMP/$name.img" \
	--cmdline "rate ops=1000000000" >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null &
vm=$!
wait_running $name
sleep 1
printf 'deny disk read vcpu 0\n' >"$TMP/kick.policy"
"$P" policy $name "$TMP/kick.policy" 2>"$TMP/$name.set"
rc=$?
if [ $rc -eq 0 ] && wait_lines "$TMP/$name.out" "read [0-9]+: status 1" 1 100; then
	pass "policy-live/kvm: a live vcpu rule switches virtio notifications from ioeventfd to trapping"
else
	fail "policy-live/kvm: ioeventfd switch" "exit $rc: $(cat "$TMP/$name.set") / $(tail -c 300 "$TMP/$name.out")"
fi
"$P" stop $name 2>/dev/null
wait $vm
