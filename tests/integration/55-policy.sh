# Policy files (docs/policy.md): deny, log, modify, stop and pause on the
# test guests, both engines; malformed files refused before the VM starts.
export POPEK_RUNTIME_DIR=$TMP/run
cat >"$TMP/issue.policy" <<'POL'
deny hypercall nr 4                     # the call returns -EPERM
log pio port 0x70-0x71                  # every access to the CMOS index/data ports goes to the audit log
modify pio read port 0x71 value 0x00    # the guest reads 0 from the CMOS data port
POL
for e in kvm soft; do
	export POPEK=$POPEK_ROOT/build/popek-san
	rm -f "$TMP/audit-$e.jsonl"
	run_vm pol-$e-yield run --engine $e --kernel "$GUESTS/hypercalls.elf" --cmdline yield-denied \
		--policy "$TMP/issue.policy" --audit "$TMP/audit-$e.jsonl"
	expect "policy/$e: deny hypercall nr 4 makes yield return -EPERM" 0 "PASS hypercalls"
	run_vm pol-$e-yield-none run --engine $e --kernel "$GUESTS/hypercalls.elf" --cmdline yield-denied
	expect "policy/$e: without the policy yield returns 0" 3 "yield returned 0, expected -1"
	run_vm pol-$e-cmos run --engine $e --kernel "$GUESTS/cmos.elf" --cmdline modified \
		--policy "$TMP/issue.policy" --audit "$TMP/audit-$e.jsonl" --stats
	expect "policy/$e: modify pio read port 0x71 value 0 (CMOS)" 1 "PASS cmos"
	# The guest writes the index once and reads the data port once: the log
	# rule sees both, the modify rule decides the read, the deny rule nothing.
	if python3 - "$ERR" <<'PY'; then
import json, sys
p = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])["policy"]
got = [(r["line"], r["rule"], r["hits"]) for r in p["rules"]]
assert got == [(1, "deny hypercall nr 4", 0), (2, "log pio port 0x70-0x71", 2),
               (3, "modify pio read port 0x71 value 0x0", 1)], got
assert p["by_class"] == {"pio": {"log": 2, "modify": 1}}, p["by_class"]
PY
		pass "policy/$e: --stats counts what each rule met, and the sums by class"
	else
		fail "policy/$e: --stats policy counts" "$(grep -o '"policy":.*' "$ERR" | head -c 600)"
	fi
	run_vm pol-$e-cmos-none run --engine $e --kernel "$GUESTS/cmos.elf"
	expect "policy/$e: without the policy CMOS register D reads 0x80" 1 "PASS cmos"
	if python3 - "$TMP/audit-$e.jsonl" <<'PY'; then
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
want = [("hypercall", "call", "nr", 4, 2**64 - 1, "deny", 1),
	("pio", "write", "port", 0x70, 0x0d, "log", 2),
	("pio", "read", "port", 0x71, 0, "modify", 3)]
got = [(l["class"], l["op"], k, l[k], l["value"], l["verdict"], l["rule"])
       for l in lines for k in ("nr", "port") if k in l]
assert got == want, got
assert all(l["vcpu"] == 0 and l["ns"] > 0 for l in lines), lines
PY
		pass "policy/$e: audit log has the denied call and the CMOS accesses as JSON lines"
	else
		fail "policy/$e: audit log" "$(head -c 600 "$TMP/audit-$e.jsonl")"
	fi
	printf 'stop pio write port 0x70\n' >"$TMP/stop.policy"
	run_vm pol-$e-stop run --engine $e --kernel "$GUESTS/cmos.elf" --policy "$TMP/stop.policy"
	expect_err "policy/$e: stop rule ends the VM (exit 72)" 72 \
		"vCPU 0: stopped by policy rule on line 1 \(pio write 0x70\)"
	printf 'deny pio read port 0x71\n' >"$TMP/deny.policy"
	run_vm pol-$e-deny run --engine $e --kernel "$GUESTS/cmos.elf" --policy "$TMP/deny.policy"
	expect "policy/$e: a denied port read returns all-ones" 3 "register D = 0xff"
done
unset POPEK

# pause: a tripwire on the yield hypercall; `popek resume` continues the VM.
P=$POPEK_ROOT/build/popek
printf 'pause hypercall nr 4\n' >"$TMP/pause.policy"
wait_paused() {
	for _ in $(seq 100); do "$P" ls 2>/dev/null | grep -q "$1 .* paused" && break; sleep 0.05; done
}
for e in kvm soft; do
	"$P" run --engine $e --name pol-pause-$e --kernel "$GUESTS/hypercalls.elf" \
		--policy "$TMP/pause.policy" >"$TMP/pause.out" 2>"$TMP/pause.err" </dev/null &
	pause_pid=$!
	wait_paused pol-pause-$e
	sleep 0.3
	if "$P" ls | grep -q "pol-pause-$e .* paused" && ! grep -q PASS "$TMP/pause.out"; then
		pass "policy/$e: pause hypercall nr 4 pauses the VM at the yield"
	else
		fail "policy/$e: pause" "$("$P" ls 2>&1) / $(tail -c 300 "$TMP/pause.out")"
	fi
	"$P" resume pol-pause-$e
	wait $pause_pid
	rc=$?
	if [ $rc -eq 0 ] && grep -q "PASS hypercalls" "$TMP/pause.out"; then
		pass "policy/$e: popek resume continues it to the end"
	else
		fail "policy/$e: resume" "exit $rc: $(tail -c 300 "$TMP/pause.err")"
	fi
done

# A VM paused by a tripwire snapshots cleanly, and restore --policy applies
# the new policy: the guest's next call, the unknown number, is denied.
"$P" run --engine soft --name pol-snap --kernel "$GUESTS/hypercalls.elf" \
	--policy "$TMP/pause.policy" >/dev/null 2>"$TMP/pol-snap.err" </dev/null &
snap_pid=$!
wait_paused pol-snap
"$P" snapshot pol-snap "$TMP/pol-snap" --stop >/dev/null 2>&1
wait $snap_pid
printf 'deny hypercall nr 0x7fff\n' >"$TMP/enosys.policy"
run_vm pol-restore restore "$TMP/pol-snap" --policy "$TMP/enosys.policy"
expect "policy: restore --policy denies the call after the snapshot" 3 \
	"hypercall 0x7fff returned -1, expected -38"
run_vm pol-restore-none restore "$TMP/pol-snap"
expect "policy: the same snapshot restored without a policy passes" 0 "PASS hypercalls"

# Malformed files are refused before the VM starts, with FILE:LINE:COL.
printf '# fine\nlog pio port 0x70\ndeny pio port 0x71-0x70\n' >"$TMP/bad.policy"
run_vm pol-bad run --engine soft --kernel "$GUESTS/hello.elf" --policy "$TMP/bad.policy"
expect_err "policy: malformed file refused with line and column (exit 64)" 64 \
	"bad.policy:3:15: expected a port range"
if ! grep -q "Hello" "$OUT"; then pass "policy: the refused VM never ran"; else fail "policy: refused VM ran" "$(head -c 200 "$OUT")"; fi
run_vm pol-missing restore "$TMP/no-such-snapshot" --policy "$TMP/no-such.policy"
expect_err "policy: restore refuses a missing policy file (exit 64)" 64 "no-such.policy"
unset POPEK_RUNTIME_DIR
