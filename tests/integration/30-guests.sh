# Every test guest on both engines, with the normal and the sanitized build.
if [ ! -c /dev/kvm ]; then
	fail "kvm engine" "/dev/kvm is missing on this machine: the kvm engine tests need it"
fi
for bin in popek popek-san; do
for e in kvm soft; do
	export POPEK=$POPEK_ROOT/build/$bin
	run_vm $e-$bin-hello run --engine $e --kernel "$GUESTS/hello.elf" --cmdline "greeting=1"
	expect "$e/$bin: hello (PVH entry)" 1 "PASS hello"
	run_vm $e-$bin-hello-mb run --engine $e --kernel "$GUESTS/hello-mb.elf"
	expect "$e/$bin: hello (multiboot entry)" 1 "PASS hello"
	run_vm $e-$bin-hello64 run --engine $e --kernel "$GUESTS/hello64.elf"
	expect "$e/$bin: hello (ELF64 long-mode entry)" 1 "PASS hello"
	run_vm $e-$bin-hypercalls run --engine $e --kernel "$GUESTS/hypercalls.elf"
	expect "$e/$bin: hypercalls, exit(0) via hypercall" 0 "PASS hypercalls"
	# strict: no tolerance for the SYSCALL/int-N quirks of nested PVM (guests/README.md)
	strict=""
	[ $e = soft ] && strict=strict
	run_vm $e-$bin-ring3 run --engine $e --kernel "$GUESTS/ring3.elf" --cmdline "$strict"
	expect "$e/$bin: ring-3 workload with system calls" 1 "PASS ring3"
	run_vm $e-$bin-pagefault run --engine $e --kernel "$GUESTS/pagefault.elf"
	expect "$e/$bin: guest-handled page faults" 1 "PASS pagefault"
	run_vm $e-$bin-timer run --engine $e --kernel "$GUESTS/timer.elf"
	expect "$e/$bin: LAPIC timer interrupts" 1 "PASS timer"
	run_vm $e-$bin-smp run --engine $e --cpus 2 --kernel "$GUESTS/smp.elf"
	expect "$e/$bin: two vCPUs" 1 "PASS smp"
	run_vm $e-$bin-apic run --engine $e --cpus 2 --kernel "$GUESTS/apic.elf" --cmdline x2apic
	expect "$e/$bin: IPIs (self, shorthands, physical, logical), x2APIC, APIC disable" 1 "PASS apic"
	if [ $e = soft ]; then # slow on an emulating /dev/kvm, and KVM's own clock
		run_vm $e-$bin-kvmclock run --engine $e --cpus 2 --kernel "$GUESTS/kvmclock.elf"
		expect "$e/$bin: kvmclock never goes backwards across two vCPUs" 1 "PASS kvmclock"
	fi
	run_vm $e-$bin-triple run --engine $e --kernel "$GUESTS/triplefault.elf"
	expect_err "$e/$bin: triple fault reported as a crash" 70 "VM crashed: vCPU 0: triple fault at RIP 0x[0-9a-f]+"
	run_vm $e-$bin-console run --engine $e --kernel "$GUESTS/hello.elf" --console "file:$TMP/console-$bin.txt"
	if [ "$RC" -eq 1 ] && grep -q "PASS hello" "$TMP/console-$bin.txt" && ! grep -q PASS "$OUT"; then
		pass "$e/$bin: --console file: receives the guest output"
	else
		fail "$e/$bin: --console file:" "exit $RC; file: $(head -c 200 "$TMP/console-$bin.txt" 2>&1)"
	fi
	# kvm: skip the forms KVM's MMIO instruction emulator lacks (guests/README.md)
	kvmflag=""
	[ $e = kvm ] && kvmflag=kvm
	run_vm $e-$bin-mmio run --engine $e --kernel "$GUESTS/mmio.elf" --device pc-testdev --cmdline "$kvmflag"
	expect "$e/$bin: memory-operand instructions on MMIO as on RAM" 1 "PASS mmio"
	run_vm $e-$bin-longrun run --engine $e --kernel "$GUESTS/longrun.elf" --cmdline "rounds=8 iters=50000"
	expect "$e/$bin: longrun" 1 "PASS longrun"
done
done
unset POPEK

# Fidelity: the soft engine computes exactly what the hardware computes.
for g in ring3 longrun; do
	for e in kvm soft; do
		"$POPEK_ROOT/build/popek" run --engine $e --kernel "$GUESTS/$g.elf" --cmdline "rounds=8 iters=50000" \
			</dev/null 2>/dev/null | grep -E "result|sum|fnv|primes|syscalls  " >"$TMP/fid-$g-$e"
	done
	if [ -s "$TMP/fid-$g-kvm" ] && cmp -s "$TMP/fid-$g-kvm" "$TMP/fid-$g-soft"; then
		pass "soft = kvm: $g computes identical results"
	else
		fail "soft = kvm: $g" "$(diff "$TMP/fid-$g-kvm" "$TMP/fid-$g-soft" | head -5 | tr '\n' ' ')"
	fi
done

run_vm stats run --engine kvm --kernel "$GUESTS/ring3.elf" --stats
if python3 - "$ERR" <<'PY'; then pass "kvm: --stats prints exit counts as JSON"; else fail "kvm: --stats" "$(tail -c 300 "$ERR")"; fi
import json, sys
line = [l for l in open(sys.argv[1]) if l.startswith("{")][-1]
s = json.loads(line)
assert s["engine"] == "kvm" and s["vcpus"] == 1, s
assert s["exits"]["io"] > 0 and s["pio"]["uart"] > 0 and s["pio"]["debug-exit"] == 1, s
PY

# kvm: writes to the PCI config address port make no exit of their own
# (coalesced: the data port access that follows delivers them), so every
# config access costs one exit; a port I/O rule in the policy turns it off.
dd if=/dev/zero of="$TMP/coalesce.img" bs=1M count=1 status=none
printf 'log pio port 0x70-0x71\n' >"$TMP/pio.policy"
for pol in none pio; do
	args=()
	[ $pol = pio ] && args=(--policy "$TMP/pio.policy")
	run_vm coalesce-$pol run --engine kvm --kernel "$GUESTS/devpolicy.elf" --cmdline "write sector=8" \
		--disk "$TMP/coalesce.img" --stats "${args[@]}"
	if python3 - "$ERR" $pol <<'PY'; then
import json, sys
line = [l for l in open(sys.argv[1]) if l.startswith("{")][-1]
s = json.loads(line)
coalesced = sum(c["engine"]["coalesced_pio"] for c in s["per_vcpu"])
accesses = sum(s["pio"].values())
assert s["pio"]["pci-config"] > 20, s
if sys.argv[2] == "none":
    # the address write and the data access of a config access: half each
    assert coalesced * 2 == s["pio"]["pci-config"], (coalesced, s)
    assert s["exits"]["io"] == accesses - coalesced, (coalesced, s)
else:
    assert coalesced == 0 and s["exits"]["io"] == accesses, (coalesced, s)
PY
		pass "kvm: PCI config address writes $([ $pol = none ] && echo "make no exits of their own" || echo "exit again under a port I/O rule")"
	else
		fail "kvm: coalesced PCI config address writes ($pol policy)" "$(tail -c 400 "$ERR")"
	fi
done
