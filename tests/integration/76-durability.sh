# Durability: the durable guest writes numbered records to virtio-blk, FLUSHes
# after each and prints "ack N" only once the FLUSH completed. popek is
# SIGKILLed at random moments; afterwards every acknowledged record must be in
# the disk file, intact (the check also accepts a later record in the same
# sector, as the guest wraps around on a full disk).
#
# What this proves, honestly: a SIGKILL ends the process, not the host, and the
# page cache survives it. So the kill trials show that popek writes a request's
# data to the image file before it publishes the used-ring entry (no user-space
# write-back cache, no completion before the write), but they would still pass
# with FLUSH turned into a no-op. The strace check below covers that half: every
# FLUSH must reach the host as an fsync/fdatasync of the image before the next
# request, i.e. before the guest could print its ack. A real host crash (power
# loss) is not simulated here.
P=$POPEK_ROOT/build/popek
DUR_TRIALS=${DUR_TRIALS:-50}
# dur_check DIR N: trial i left DIR/i.img and DIR/i.out. Prints one line per
# bad trial, then "acked trials_without_ack bad_trials".
dur_check() {
	python3 - "$1" "$2" <<'PY'
import re, struct, sys
def fnv(b):
    h = 0xcbf29ce484222325
    for x in b:
        h = ((h ^ x) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h
def check(img, out):
    """Problem with an acknowledged record, or None; and the number of acks."""
    acks = [int(m) for m in re.findall(r"^ack (\d+)\r?\n", out, re.M)]
    sectors = len(img) // 512
    latest = {}
    for n in acks:
        latest[1 + (n - 1) % (sectors - 1)] = n
    for s, n in latest.items():
        r = img[512 * s:512 * (s + 1)]
        magic, num = struct.unpack_from("<QQ", r)
        if magic != 0x44524f4345524b50 or fnv(r[:504]) != struct.unpack_from("<Q", r, 504)[0]:
            return f"sector {s}: acknowledged record {n} is not there (torn or missing)", len(acks)
        want = [n * 0x9e3779b97f4a7c15 + i & 0xFFFFFFFFFFFFFFFF for i in range(61)]
        if num < n or (num - n) % (sectors - 1) or (
                num == n and list(struct.unpack_from("<61Q", r, 16)) != want):
            return f"sector {s}: holds record {num}, acknowledged {n}", len(acks)
    return None, len(acks)
total = zero = bad = 0
for i in range(1, int(sys.argv[2]) + 1):
    out = open(f"{sys.argv[1]}/{i}.out", errors="replace").read()
    problem, n = check(open(f"{sys.argv[1]}/{i}.img", "rb").read(), out)
    total += n
    zero += n == 0
    if problem:
        bad += 1
        print(f"  trial {i}: {problem}; console ends: {out[-100:]!r}")
print(total, zero, bad)
PY
}
mkdir -p "$TMP/dur"
for i in $(seq "$DUR_TRIALS"); do
	# 8192 sectors, more than a trial writes: no record overwrites an
	# acknowledged one, so the check does not rely on sector writes being
	# atomic (popek's are file writes, which promise no such thing when the
	# process dies in the middle of one).
	truncate -s 4M "$TMP/dur/$i.img"
	"$P" run --engine soft --kernel "$GUESTS/durable.elf" --disk "$TMP/dur/$i.img" \
		>"$TMP/dur/$i.out" 2>/dev/null </dev/null &
	dur_pid=$!
	sleep "0.$(printf '%03d' $((RANDOM % 600 + 20)))"
	kill -KILL "$dur_pid"
	wait "$dur_pid" 2>/dev/null
done
dur_res=$(dur_check "$TMP/dur" "$DUR_TRIALS")
read -r dur_total dur_zero dur_bad <<<"$(tail -1 <<<"$dur_res")"
if [ "${dur_bad:-1}" -eq 0 ] && [ "$dur_zero" -lt $((DUR_TRIALS / 2)) ]; then
	pass "durability: $DUR_TRIALS SIGKILL trials, all $dur_total acknowledged records intact"
else
	[ -n "${DUR_KEEP:-}" ] && cp -r "$TMP/dur" "$DUR_KEEP/"
	fail "durability" "${dur_bad:-?} of $DUR_TRIALS trials lost an acknowledged record, ${dur_zero:-?} had no ack: $(head -3 <<<"$dur_res" | tr '\n' ' ')"
fi

# Every FLUSH must be a real sync of the image, between the write and the ack.
if command -v strace >/dev/null; then
	truncate -s 64K "$TMP/dur2.img"
	strace -f -y -qq -e trace=pwritev,pwrite64,write,fsync,fdatasync -o "$TMP/dur.strace" \
		"$P" run --engine soft --kernel "$GUESTS/durable.elf" --cmdline records=20 \
		--disk "$TMP/dur2.img" >"$TMP/dur2.out" 2>&1 </dev/null
	rc=$?
	# The order of image writes (W), syncs (S) and console line ends (L): the
	# UART writes byte by byte, and each "ack N" line ends after its sync.
	seq=$(grep -E 'dur2\.img>|^[0-9]+ +write\(1<.*"\\n"' "$TMP/dur.strace" | sed -E \
		-e '/(fsync|fdatasync)\(/{s/.*/S/;b}' -e '/write\(1</{s/.*/L/;b}' -e 's/.*/W/' | tr -d '\n')
	# "durable: N sectors", then 20 times write, sync, "ack N", then "PASS durable".
	if [ "$rc" -eq 1 ] && [ "$seq" = "L$(printf 'WSL%.0s' $(seq 20))L" ]; then
		pass "durability: each of 20 records is written, synced (fsync), then acknowledged"
	else
		fail "durability: sync order" "rc $rc, sequence ${seq:0:80} (W write, S sync, L console line)"
	fi
else
	skip "durability: sync order" "strace not installed"
fi
