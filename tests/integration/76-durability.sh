# Durability: the durable guest writes numbered records to virtio-blk, FLUSHes
# after each and prints "ack N" only once the FLUSH completed. popek is
# SIGKILLed at random moments; afterwards every acknowledged record must be in
# the disk file, intact (a later record in the same sector is fine: the guest
# wraps around).
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
dur_check() { # IMAGE CONSOLE: every acked record intact; prints "acked/sectors" or the problem
	python3 - "$1" "$2" <<'PY'
import re, struct, sys
img = open(sys.argv[1], "rb").read()
acks = [int(m) for m in re.findall(r"^ack (\d+)\r?\n", open(sys.argv[2], errors="replace").read(), re.M)]
sectors = len(img) // 512
def fnv(b):
    h = 0xcbf29ce484222325
    for x in b:
        h = ((h ^ x) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h
latest = {}
for n in acks:
    latest[1 + (n - 1) % (sectors - 1)] = n
for s, n in latest.items():
    r = img[512 * s:512 * (s + 1)]
    magic, num = struct.unpack_from("<QQ", r)
    if magic != 0x44524f4345524b50 or fnv(r[:504]) != struct.unpack_from("<Q", r, 504)[0]:
        print(f"sector {s}: acknowledged record {n} is not there (torn or missing)"); sys.exit(1)
    want = [n * 0x9e3779b97f4a7c15 + i & 0xFFFFFFFFFFFFFFFF for i in range(61)]
    if num < n or (num - n) % (sectors - 1) or (num == n and list(struct.unpack_from("<61Q", r, 16)) != want):
        print(f"sector {s}: holds record {num}, acknowledged {n}"); sys.exit(1)
print(f"{len(acks)} {len(latest)}")
PY
}
dur_bad=0
dur_total=0
dur_zero=0
for i in $(seq "$DUR_TRIALS"); do
	truncate -s 0 "$TMP/dur.img"
	truncate -s 64K "$TMP/dur.img" # 128 sectors: long runs wrap around
	"$P" run --engine soft --kernel "$GUESTS/durable.elf" --disk "$TMP/dur.img" \
		>"$TMP/dur.out" 2>"$TMP/dur.err" </dev/null &
	dur_pid=$!
	sleep "0.$(printf '%03d' $((RANDOM % 600 + 20)))"
	kill -KILL "$dur_pid"
	wait "$dur_pid" 2>/dev/null
	if ! res=$(dur_check "$TMP/dur.img" "$TMP/dur.out"); then
		dur_bad=$((dur_bad + 1))
		echo "  trial $i: $res; console: $(tail -c 120 "$TMP/dur.out" | tr '\n' ' ')"
		[ -n "${DUR_KEEP:-}" ] && cp "$TMP/dur.img" "$TMP/dur.out" "$DUR_KEEP/"
		continue
	fi
	read -r acked _ <<<"$res"
	dur_total=$((dur_total + acked))
	[ "$acked" -eq 0 ] && dur_zero=$((dur_zero + 1))
done
if [ "$dur_bad" -eq 0 ] && [ "$dur_zero" -lt $((DUR_TRIALS / 2)) ]; then
	pass "durability: $DUR_TRIALS SIGKILL trials, all $dur_total acknowledged records intact"
else
	fail "durability" "$dur_bad of $DUR_TRIALS trials lost an acknowledged record; $dur_zero trials had no ack"
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
