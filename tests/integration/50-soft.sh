# The soft engine: every test guest with the same output and exit status as on
# kvm, and the differential CPU tester (bounded; `make fuzz-cpu` runs millions).
for bin in popek popek-san; do
	export POPEK=$POPEK_ROOT/build/$bin
	e=soft
	run_vm $e-$bin-hello run --engine $e --kernel "$GUESTS/hello.elf" --cmdline "greeting=1"
	expect "$e/$bin: hello (PVH entry)" 1 "PASS hello"
	run_vm $e-$bin-hello-mb run --engine $e --kernel "$GUESTS/hello-mb.elf"
	expect "$e/$bin: hello (multiboot entry)" 1 "PASS hello"
	run_vm $e-$bin-hello64 run --engine $e --kernel "$GUESTS/hello64.elf"
	expect "$e/$bin: hello (ELF64 long-mode entry)" 1 "PASS hello"
	run_vm $e-$bin-hypercalls run --engine $e --kernel "$GUESTS/hypercalls.elf"
	expect "$e/$bin: hypercalls, exit(0) via hypercall" 0 "PASS hypercalls"
	run_vm $e-$bin-ring3 run --engine $e --kernel "$GUESTS/ring3.elf"
	expect "$e/$bin: ring-3 workload with system calls" 1 "PASS ring3"
	run_vm $e-$bin-pagefault run --engine $e --kernel "$GUESTS/pagefault.elf"
	expect "$e/$bin: guest-handled page faults" 1 "PASS pagefault"
	run_vm $e-$bin-timer run --engine $e --kernel "$GUESTS/timer.elf"
	expect "$e/$bin: LAPIC timer interrupts" 1 "PASS timer"
	run_vm $e-$bin-smp run --engine $e --cpus 2 --kernel "$GUESTS/smp.elf"
	expect "$e/$bin: two vCPUs" 1 "PASS smp"
	run_vm $e-$bin-triple run --engine $e --kernel "$GUESTS/triplefault.elf"
	expect_err "$e/$bin: triple fault reported as a crash" 70 "VM crashed: vCPU 0: triple fault at RIP 0x[0-9a-f]+"
done
unset POPEK

run_vm soft-stats run --engine soft --kernel "$GUESTS/ring3.elf" --stats
if python3 - "$ERR" <<'PY'; then pass "soft: --stats reports traps by class"; else fail "soft: --stats" "$(tail -c 300 "$ERR")"; fi
import json, sys
line = [l for l in open(sys.argv[1]) if l.startswith("{")][-1]
s = json.loads(line)
e = s["per_vcpu"][0]["engine"]
assert s["engine"] == "soft", s
assert e["instructions"] > 1000000 and e["classes"]["privileged"] > 0, e
assert e["traps"]["out"] > 0 and e["traps"]["syscall"] > 0 and e["tlb"]["hits"] > 0, e
PY

out=$("$POPEK_ROOT/build/cpudiff" -n 20000 2>&1)
if [ $? -eq 0 ]; then
	pass "soft: differential CPU test ($(tail -1 <<<"$out"))"
else
	fail "soft: differential CPU test" "$(grep -m5 -A1 MISMATCH <<<"$out" | tr '\n' ' ')"
fi
