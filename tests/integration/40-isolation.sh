# Isolation: four VMs at once, one process each; one triple-faults, three finish.
pids=()
for i in 1 2 3 4; do
	k=$GUESTS/ring3.elf
	[ $i -eq 2 ] && k=$GUESTS/triplefault.elf
	timeout 120 "$POPEK_ROOT/build/popek" run --engine kvm --kernel "$k" >"$TMP/iso$i.out" 2>"$TMP/iso$i.err" </dev/null &
	pids+=($!)
done
for i in 1 2 3 4; do
	wait "${pids[$((i - 1))]}"
	echo $? >"$TMP/iso$i.rc"
done
if [ "$(cat "$TMP/iso2.rc")" = 70 ] && grep -q "VM crashed: vCPU 0: triple fault at RIP" "$TMP/iso2.err"; then
	pass "isolation: the faulting VM is reported as crashed"
else
	fail "isolation: crashed VM" "rc $(cat "$TMP/iso2.rc"): $(cat "$TMP/iso2.err")"
fi
for i in 1 3 4; do
	if [ "$(cat "$TMP/iso$i.rc")" = 1 ] && grep -q "PASS ring3" "$TMP/iso$i.out"; then
		pass "isolation: VM $i finished with correct output"
	else
		fail "isolation: VM $i" "rc $(cat "$TMP/iso$i.rc"): $(tail -c 200 "$TMP/iso$i.out")"
	fi
done
