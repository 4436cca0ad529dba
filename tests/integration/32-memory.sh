# Guest RAM pages (README "Guest memory"): shmem transparent huge pages where
# the host allows them, a one-line note on kvm where it does not, and
# --mem-hugepages on reserved hugetlbfs pages. The host's settings are changed
# for the test and put back.
export POPEK_RUNTIME_DIR=$TMP/run
P=$POPEK_ROOT/build/popek
THP=/sys/kernel/mm/transparent_hugepage/shmem_enabled
NR=/proc/sys/vm/nr_hugepages
if [ ! -w "$THP" ] || [ ! -w "$NR" ]; then
	fail "memory: host settings" "$THP and $NR must be writable (run the tests as root)"
	return 0 2>/dev/null || exit 0
fi
thp_was=$(sed 's/.*\[\(.*\)\].*/\1/' "$THP")
nr_was=$(cat "$NR")
printf 'pause hypercall nr 4\n' >"$TMP/mem-pause.policy"

# mem_run NAME ENGINE ARGS...: the hypercalls guest, paused at its yield call;
# sets HUGE (kB of guest RAM the VMM maps with huge pages, from smaps) and
# STATS (its --stats line) once it has been resumed to its end.
mem_run() {
	local name=$1 engine=$2
	shift 2
	"$P" run --engine "$engine" --name "$name" --kernel "$GUESTS/hypercalls.elf" --stats \
		--policy "$TMP/mem-pause.policy" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null &
	local pid=$!
	for _ in $(seq 100); do "$P" ls 2>/dev/null | grep -q "$name .* paused" && break; sleep 0.05; done
	HUGE=0
	for t in $(pgrep -P $pid) $pid; do
		local h
		h=$(awk '/^(ShmemPmdMapped|FilePmdMapped|Private_Hugetlb|Shared_Hugetlb):/ { s += $2 }
			END { print s + 0 }' /proc/$t/smaps_rollup 2>/dev/null)
		[ "${h:-0}" -gt "$HUGE" ] && HUGE=$h
	done
	"$P" resume "$name" >/dev/null 2>&1
	wait $pid
	RC=$?
	STATS=$(grep -o '"ram_pages":"[a-z0-9]*"' "$TMP/$name.err")
}

echo never >"$THP"
mem_run mem-4k kvm
if [ $RC = 0 ] && [ "$STATS" = '"ram_pages":"4k"' ] && [ "$HUGE" = 0 ] &&
	grep -q "guest RAM in 4 KiB pages: shmem huge pages are off.*echo advise > $THP" "$TMP/mem-4k.err"; then
	pass "memory/kvm: shmem huge pages off: 4 KiB pages and one line with the fix"
else
	fail "memory/kvm: 4 KiB fallback" "exit $RC, $STATS, huge $HUGE kB: $(head -c 300 "$TMP/mem-4k.err")"
fi

echo advise >"$THP"
for e in kvm soft; do
	mem_run mem-thp-$e $e
	if [ $RC = 0 ] && [ "$STATS" = '"ram_pages":"thp"' ] && [ "$HUGE" -ge 2048 ] &&
		! grep -q "4 KiB pages" "$TMP/mem-thp-$e.err"; then
		pass "memory/$e: shmem huge pages allowed: guest RAM mapped with $HUGE kB of huge pages"
	else
		fail "memory/$e: THP" "exit $RC, $STATS, huge $HUGE kB: $(head -c 300 "$TMP/mem-thp-$e.err")"
	fi
done
echo "$thp_was" >"$THP"

echo 0 >"$NR"
run_vm mem-no-huge run --engine kvm --mem-hugepages --kernel "$GUESTS/hello.elf"
expect_err "memory: --mem-hugepages without reserved pages fails at start with the fix" 64 \
	"free 2 MiB huge pages, 64 needed — reserve them with: echo 64 > /proc/sys/vm/nr_hugepages"
run_vm mem-odd run --engine kvm --mem-hugepages --mem 3M --kernel "$GUESTS/hello.elf"
expect_err "memory: --mem-hugepages needs whole 2 MiB pages" 64 "must be a multiple of 2M"

echo 64 >"$NR"
if [ "$(cat "$NR")" != 64 ]; then
	fail "memory: hugetlb" "the host gave $(cat "$NR") of 64 huge pages"
else
	for e in kvm soft; do
		mem_run mem-huge-$e $e --mem-hugepages
		if [ $RC = 0 ] && [ "$STATS" = '"ram_pages":"hugetlb"' ] && [ "$HUGE" -ge 2048 ] &&
			grep -q "PASS hypercalls" "$TMP/mem-huge-$e.out"; then
			pass "memory/$e: --mem-hugepages: guest RAM on $HUGE kB of hugetlb pages"
		else
			fail "memory/$e: hugetlb" "exit $RC, $STATS, huge $HUGE kB: $(head -c 300 "$TMP/mem-huge-$e.err")"
		fi
	done
	# A snapshot of a VM on huge pages restores (on 4 KiB pages, copy-on-write).
	"$P" run --engine kvm --name mem-snap --kernel "$GUESTS/hypercalls.elf" --mem-hugepages \
		--policy "$TMP/mem-pause.policy" >/dev/null 2>"$TMP/mem-snap.err" </dev/null &
	snap_pid=$!
	for _ in $(seq 100); do "$P" ls 2>/dev/null | grep -q "mem-snap .* paused" && break; sleep 0.05; done
	"$P" snapshot mem-snap "$TMP/mem-snap" --stop >/dev/null 2>&1
	wait $snap_pid
	run_vm mem-restore restore "$TMP/mem-snap" --engine soft
	expect "memory: a VM on hugetlb pages snapshots and restores" 0 "PASS hypercalls"
fi
echo "$nr_was" >"$NR"
unset POPEK_RUNTIME_DIR
