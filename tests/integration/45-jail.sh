# The jail (docs/jail.md): what a running VMM really has, the forbidden-call
# report, --no-jail, an unprivileged user, cgroup limits, signals. (Every other
# suite runs jailed too: it is the default; 70-linux boots Linux with a disk.)
export POPEK_RUNTIME_DIR=$TMP/run

# jail_field STDERR-FILE: the --stats line's "jail" object as key=value lines.
jail_field() {
	grep '^{' "$1" | tail -1 | python3 -c 'import json,sys; j=json.load(sys.stdin)["jail"]
for k, v in j.items(): print("%s=%s" % (k, ",".join(v) if isinstance(v, list) else json.dumps(v)))'
}

# start_vm NAME BIN ARGS...: a long-running guest in the background; sets VM_PID
# (the VMM's host PID as popek ls reports it) and BG (the popek command's PID).
start_vm() {
	local name=$1 bin=$2
	shift 2
	"$bin" run --name "$name" --kernel "$GUESTS/longrun.elf" --cmdline "rounds=100000" \
		--console "file:$TMP/$name.console" "$@" >/dev/null 2>"$TMP/$name.err" </dev/null &
	BG=$!
	VM_PID=
	for _ in $(seq 600); do
		VM_PID=$("$bin" ls 2>/dev/null | awk -v n="$name" '$1 == n {print $NF}')
		[ -n "$VM_PID" ] && grep -q "round 1$" "$TMP/$name.console" 2>/dev/null && break
		sleep 0.05
	done
}

stop_vm() {
	"$1" stop "$2" >/dev/null 2>&1 || kill "$BG" 2>/dev/null
	wait "$BG" 2>/dev/null
}

for bin in popek popek-san; do
	B=$POPEK_ROOT/build/$bin
	POPEK=$B
	for e in soft kvm; do
		[ $e = kvm ] && [ ! -c /dev/kvm ] && continue
		t="jail: $bin $e"
		# A virtio disk: on kvm its queue notifications are eventfds, which
		# once had threads of their own that kept root's capabilities.
		truncate -s 1M "$TMP/jail-$bin-$e.img"
		start_vm jail-$bin-$e "$B" --engine $e --disk "$TMP/jail-$bin-$e.img"
		st=/proc/$VM_PID/status
		if [ -z "$VM_PID" ] || [ ! -r "$st" ]; then
			fail "$t: running" "no PID from popek ls: $(tail -c 300 "$TMP/jail-$bin-$e.err")"
			stop_vm "$B" jail-$bin-$e
			continue
		fi
		if grep -qx "Seccomp:	2" "$st" && grep -qx "CapEff:	0000000000000000" "$st" &&
			grep -qx "CapPrm:	0000000000000000" "$st" && grep -qx "CapBnd:	0000000000000000" "$st" &&
			grep -qx "NoNewPrivs:	1" "$st"; then
			pass "$t: Seccomp 2, no capabilities, NoNewPrivs"
		else
			fail "$t: status" "$(grep -E 'Seccomp:|Cap|NoNewPrivs' "$st" | tr '\n\t' '  ')"
		fi
		# Every thread, not only the main one, is filtered and has no capabilities.
		threads=0 bad=""
		for ts in /proc/$VM_PID/task/*/status; do
			threads=$((threads + 1))
			grep -qx "Seccomp:	2" "$ts" && grep -qx "CapEff:	0000000000000000" "$ts" ||
				bad="$bad $(grep -E '^(Name|Seccomp|CapEff):' "$ts" | tr '\n\t' '  ')"
		done
		if [ "$threads" -ge 2 ] && [ -z "$bad" ]; then
			pass "$t: all $threads threads have the filter and no capabilities"
		else
			fail "$t: threads" "$threads threads;$bad"
		fi
		if grep -qE "^NSpid:	$VM_PID	1$" "$st"; then pass "$t: the VMM is PID 1 of its namespace"; else fail "$t: NSpid" "$(grep NSpid "$st")"; fi
		# The root is the empty tmpfs (a sanitized build keeps its own /proc).
		want=""
		[ $bin = popek-san ] && want="proc"
		root=$(ls -A /proc/$VM_PID/root 2>&1 | tr '\n' ' ' | sed 's/ $//')
		if [ "$root" = "$want" ]; then pass "$t: the root is empty"; else fail "$t: root" "ls shows '$root'"; fi
		same=""
		for ns in mnt pid ipc uts net; do
			[ "$(readlink /proc/$VM_PID/ns/$ns)" = "$(readlink /proc/self/ns/$ns)" ] && same="$same $ns"
		done
		if [ -z "$same" ]; then pass "$t: mnt pid ipc uts net namespaces are its own"; else fail "$t: namespaces" "shared:$same"; fi
		stop_vm "$B" jail-$bin-$e
	done

	run_vm jail-stats-$bin run --engine soft --kernel "$GUESTS/hello.elf" --stats
	jail_field "$ERR" >"$TMP/jf" 2>/dev/null
	if [ "$RC" = 1 ] && grep -qx "enabled=true" "$TMP/jf" && grep -qx "pivot_root=true" "$TMP/jf" &&
		grep -qx "namespaces=mnt,pid,ipc,uts,net" "$TMP/jf" && grep -qx "caps_dropped=true" "$TMP/jf" &&
		grep -qx "no_new_privs=true" "$TMP/jf" && grep -qE "^seccomp_syscalls=[1-9][0-9]+$" "$TMP/jf"; then
		pass "jail: $bin --stats reports the protections ($(grep seccomp "$TMP/jf"))"
	else
		fail "jail: $bin --stats" "exit $RC; $(tr '\n' ' ' <"$TMP/jf")"
	fi

	POPEK_JAIL_SELFTEST=forbidden run_vm jail-forbidden-$bin run --engine soft --kernel "$GUESTS/hello.elf"
	if [ "$RC" = 73 ] && [ "$(grep -c "forbidden system call" "$ERR")" = 1 ] &&
		grep -qx "popek: jail: forbidden system call mount (165) — the seccomp allowlist does not include it" "$ERR"; then
		pass "jail: $bin reports a forbidden system call by name, exit 73"
	else
		fail "jail: $bin forbidden call" "exit $RC; $(tail -c 300 "$ERR")"
	fi
done
unset POPEK
P=$POPEK_ROOT/build/popek

run_vm jail-off run --no-jail --engine soft --kernel "$GUESTS/hello.elf" --stats
jail_field "$ERR" >"$TMP/jf" 2>/dev/null
if [ "$RC" = 1 ] && grep -qx "enabled=false" "$TMP/jf" && grep -qx "seccomp_syscalls=0" "$TMP/jf" &&
	grep -qx "namespaces=" "$TMP/jf"; then
	pass "jail: --no-jail turns it off and --stats says so"
else
	fail "jail: --no-jail" "exit $RC; $(tr '\n' ' ' <"$TMP/jf")"
fi
POPEK_JAIL_SELFTEST=forbidden run_vm jail-off-hook run --no-jail --engine soft --kernel "$GUESTS/hello.elf"
expect "jail: --no-jail runs without a filter" 1 "PASS hello"

# An unprivileged user gets the same jail from a user namespace.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	(unset POPEK_RUNTIME_DIR; cd /; setpriv --reuid=65534 --regid=65534 --clear-groups \
		timeout 60 "$P" run --engine soft --kernel "$GUESTS/hello.elf" --stats \
		>"$TMP/nobody.out" 2>"$TMP/nobody.err" </dev/null)
	RC=$?
	jail_field "$TMP/nobody.err" >"$TMP/jf" 2>/dev/null
	if [ "$RC" = 1 ] && grep -qx "userns=true" "$TMP/jf" && grep -qx "pivot_root=true" "$TMP/jf" &&
		grep -qx "caps_dropped=true" "$TMP/jf" && grep -qx "namespaces=mnt,pid,ipc,uts,net,user" "$TMP/jf"; then
		pass "jail: uid 65534 is jailed in a user namespace"
	elif [ "$RC" = 1 ] && grep -q "popek: jail: no user namespace\|cannot create user namespaces" "$TMP/nobody.err"; then
		pass "jail: uid 65534 without user namespaces is told why: $(grep -m1 'popek: jail' "$TMP/nobody.err")"
	else
		fail "jail: uid 65534" "exit $RC; $(tail -c 300 "$TMP/nobody.err")"
	fi
else
	skip "jail: unprivileged user" "needs root and setpriv to switch to uid 65534"
fi

# cgroup limits, read back from the VMM's own cgroup files.
start_vm jail-cg "$P" --engine soft --cpu-quota 50 --mem-limit 200M
if grep -q "cgroup is not writable" "$TMP/jail-cg.err"; then
	stop_vm "$P" jail-cg
	if grep -qE "^popek: jail: none: the host's .* cgroup is not writable" "$TMP/jail-cg.err"; then
		pass "jail: unwritable cgroups are reported in one line"
	else
		fail "jail: cgroups" "$(cat "$TMP/jail-cg.err")"
	fi
elif [ -n "$VM_PID" ]; then
	cpu=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ {print $3}' /proc/$VM_PID/cgroup)
	mem=$(awk -F: '$2 == "memory" {print $3}' /proc/$VM_PID/cgroup)
	v2=$(awk -F: '$1 == 0 {print $3}' /proc/$VM_PID/cgroup)
	if [ -n "$mem" ] && [ -d /sys/fs/cgroup/memory ]; then
		q=$(cat /sys/fs/cgroup/cpu$cpu/cpu.cfs_quota_us 2>/dev/null)
		l=$(cat /sys/fs/cgroup/memory$mem/memory.limit_in_bytes 2>/dev/null)
	else
		q=$(cut -d' ' -f1 /sys/fs/cgroup$v2/cpu.max 2>/dev/null)
		l=$(cat /sys/fs/cgroup$v2/memory.max 2>/dev/null)
	fi
	if [ "$q" = 50000 ] && [ "$l" = $((200 << 20)) ]; then
		pass "jail: --cpu-quota 50 and --mem-limit 200M are the VMM's cgroup limits"
	else
		fail "jail: cgroup limits" "quota '$q' limit '$l' (cgroups: $(tr '\n' ' ' </proc/$VM_PID/cgroup))"
	fi
	"$P" stats jail-cg >"$TMP/cg.stats" 2>&1
	stop_vm "$P" jail-cg
	if python3 -c 'import json,sys; assert "/popek-" in json.load(open(sys.argv[1]))["jail"]["cgroup"]' "$TMP/cg.stats" 2>/dev/null; then
		pass "jail: popek stats names the cgroup"
	else
		fail "jail: stats cgroup" "$(tr -d '\n' <"$TMP/cg.stats" | grep -o '"jail":.*')"
	fi
	if [ -n "$mem" ] && [ -d "/sys/fs/cgroup/memory$mem" ]; then
		fail "jail: cgroup cleanup" "/sys/fs/cgroup/memory$mem is left behind"
	else
		pass "jail: the cgroup is removed when the VM ends"
	fi
else
	fail "jail: cgroups" "the VM did not start: $(tail -c 300 "$TMP/jail-cg.err")"
	stop_vm "$P" jail-cg
fi

# A signal to the jailed VMM (its namespace's init) still ends it with 128+N.
start_vm jail-sig "$P" --engine soft
if [ -n "$VM_PID" ]; then
	# A snapshot request without the directory's descriptor is refused; the VM lives on.
	reply=$(python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"{\"cmd\":\"snapshot\",\"dir\":\"/tmp/nowhere\"}\n"); print(s.makefile().readline().strip())' \
		"$POPEK_RUNTIME_DIR/jail-sig.sock" 2>&1)
	if echo "$reply" | grep -q '"ok":false.*descriptor' && "$P" ls | grep -q "^jail-sig .* running"; then
		pass "jail: a snapshot request without a directory descriptor is refused, the VM runs on"
	else
		fail "jail: snapshot without a descriptor" "reply $reply; $(tail -c 200 "$TMP/jail-sig.err")"
	fi
	kill -TERM "$VM_PID"
	wait "$BG"
	rc=$?
	if [ $rc = 143 ] && grep -q "stopped by signal 15" "$TMP/jail-sig.err"; then
		pass "jail: SIGTERM to the jailed VMM exits 143"
	else
		fail "jail: SIGTERM" "exit $rc; $(tail -c 200 "$TMP/jail-sig.err")"
	fi
else
	fail "jail: SIGTERM" "the VM did not start"
	stop_vm "$P" jail-sig
fi
unset POPEK_RUNTIME_DIR
