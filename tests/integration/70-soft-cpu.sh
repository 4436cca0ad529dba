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
PY

out=$("$POPEK_ROOT/build/cpudiff" -n 20000 2>&1)
if [ $? -eq 0 ]; then
	pass "soft: differential CPU test ($(tail -1 <<<"$out"))"
else
	fail "soft: differential CPU test" "$(grep -m5 -A1 MISMATCH <<<"$out" | tr '\n' ' ')"
fi

# A crash after #UD names the refused instruction (RIP, bytes, opcode, class).
run_vm soft-ud run --engine soft --kernel "$GUESTS/triplefault.elf"
expect_err "soft: crash report names the instruction that raised #UD" 70 \
	"last raised #UD at RIP 0x[0-9a-f]+, bytes \[0f 0b\], opcode 0f 0b, class innocuous"
