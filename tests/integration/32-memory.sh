# Guest RAM pages (README "Guest memory"): fresh RAM is anonymous memory on
# transparent huge pages where the host's THP policy allows them, a memfd (on
# shmem huge pages where shmem's policy allows them) when a vhost-user backend
# must map it, a one-line note on kvm when 4 KiB pages are used, and
# --mem-hugepages on reserved hugetlbfs pages. The host's settings are changed
# for the test and put back.
export POPEK_RUNTIME_DIR=$TMP/run
P=$POPEK_ROOT/build/popek
ANON=/sys/kernel/mm/transparent_hugepage/enabled
THP=/sys/kernel/mm/transparent_hugepage/shmem_enabled
NR=/proc/sys/vm/nr_hugepages
if [ ! -w "$ANON" ] || [ ! -w "$THP" ] || [ ! -w "$NR" ]; then
	fail "memory: host settings" "$ANON, $THP and $NR must be writable (run the tests as root)"
	return 0 2>/dev/null || exit 0
fi
anon_was=$(sed 's/.*\[\(.*\)\].*/\1/' "$ANON")
thp_was=$(sed 's/.*\[\(.*\)\].*/\1/' "$THP")
nr_was=$(cat "$NR")
printf 'pause hypercall nr 4\n' >"$TMP/mem-pause.policy"

# mem_run NAME ENGINE ARGS...: the hypercalls guest, paused at its yield call;
# sets HUGE (kB of guest RAM the VMM maps with huge pages, from smaps) and
# STATS (the RAM's kind and pages from its --stats line) once it has been
# resumed to its end.
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
		h=$(awk '/^(AnonHugePages|ShmemPmdMapped|FilePmdMapped|Private_Hugetlb|Shared_Hugetlb):/ { s += $2 }
			END { print s + 0 }' /proc/$t/smaps_rollup 2>/dev/null)
		[ "${h:-0}" -gt "$HUGE" ] && HUGE=$h
	done
	"$P" resume "$name" >/dev/null 2>&1
	wait $pid
	RC=$?
	STATS=$(grep -o '"ram":"[a-z]*","ram_pages":"[a-z0-9]*"' "$TMP/$name.err")
}

# Anonymous RAM follows the host's THP policy, whatever shmem's is.
echo never >"$THP"
echo madvise >"$ANON"
for e in kvm soft; do
	mem_run mem-thp-$e $e
	if [ $RC = 0 ] && [ "$STATS" = '"ram":"anonymous","ram_pages":"thp"' ] && [ "$HUGE" -ge 2048 ] &&
		! grep -q "4 KiB pages" "$TMP/mem-thp-$e.err"; then
		pass "memory/$e: anonymous RAM with shmem huge pages off: mapped with $HUGE kB of huge pages"
	else
		fail "memory/$e: THP" "exit $RC, $STATS, huge $HUGE kB: $(head -c 300 "$TMP/mem-thp-$e.err")"
	fi
done
echo never >"$ANON"
mem_run mem-4k kvm
echo "$anon_was" >"$ANON"
if [ $RC = 0 ] && [ "$STATS" = '"ram":"anonymous","ram_pages":"4k"' ] && [ "$HUGE" = 0 ] &&
	grep -q "guest RAM in 4 KiB pages: transparent huge pages are off.*echo madvise > $ANON" "$TMP/mem-4k.err"; then
	pass "memory/kvm: transparent huge pages off: 4 KiB pages and one line with the fix"
else
	fail "memory/kvm: 4 KiB fallback" "exit $RC, $STATS, huge $HUGE kB: $(head -c 300 "$TMP/mem-4k.err")"
fi

# A vhost-user backend (--fs: a virtiofsd popek starts) maps the RAM: a memfd.
if [ -x /usr/lib/qemu/virtiofsd ]; then
	mkdir -p "$TMP/mem-fs"
	mem_run mem-memfd-4k kvm --fs "$TMP/mem-fs,tag=m"
	if [ $RC = 0 ] && [ "$STATS" = '"ram":"memfd","ram_pages":"4k"' ] && [ "$HUGE" = 0 ] &&
		grep -q "guest RAM in 4 KiB pages: it is a memfd for the vhost-user backends, and shmem huge pages are off.*echo advise > $THP" "$TMP/mem-memfd-4k.err"; then
		pass "memory/kvm: with a vhost-user backend: a memfd, on 4 KiB pages while shmem huge pages are off, and the fix"
	else
		fail "memory/kvm: memfd" "exit $RC, $STATS, huge $HUGE kB: $(head -c 300 "$TMP/mem-memfd-4k.err")"
	fi
	echo advise >"$THP"
	mem_run mem-memfd-thp kvm --fs "$TMP/mem-fs,tag=m"
	if [ $RC = 0 ] && [ "$STATS" = '"ram":"memfd","ram_pages":"thp"' ] && [ "$HUGE" -ge 2048 ]; then
		pass "memory/kvm: with a vhost-user backend and shmem huge pages allowed: a memfd on $HUGE kB of huge pages"
	else
		fail "memory/kvm: memfd THP" "exit $RC, $STATS, huge $HUGE kB: $(head -c 300 "$TMP/mem-memfd-thp.err")"
	fi
else
	fail "memory: memfd" "needs /usr/lib/qemu/virtiofsd (Debian's qemu-system-common: scripts/install-deps.sh)"
fi
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
		if [ $RC = 0 ] && [ "$STATS" = '"ram":"memfd","ram_pages":"hugetlb"' ] && [ "$HUGE" -ge 2048 ] &&
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
