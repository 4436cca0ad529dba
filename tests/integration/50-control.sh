# Control channel: ls, pause/resume, stats and stop on a running VM.
export POPEK_RUNTIME_DIR=$TMP/run
P=$POPEK_ROOT/build/popek
"$P" run --engine kvm --name ctl-a --kernel "$GUESTS/longrun.elf" --cmdline "rounds=100000" \
	--console "file:$TMP/ctl.console" >/dev/null 2>"$TMP/ctl.err" </dev/null &
ctl_pid=$!
for _ in $(seq 100); do grep -q "round 1$" "$TMP/ctl.console" 2>/dev/null && break; sleep 0.05; done
if "$P" ls | grep -qE "^ctl-a +kvm +128M +1 running"; then pass "control: ls lists the running VM"; else fail "control: ls" "$("$P" ls 2>&1)"; fi
"$P" pause ctl-a
a=$(grep -c round "$TMP/ctl.console"); sleep 0.4; b=$(grep -c round "$TMP/ctl.console")
if [ "$a" = "$b" ] && "$P" ls | grep -q "ctl-a .* paused"; then pass "control: pause stops the guest"; else fail "control: pause" "rounds $a -> $b"; fi
"$P" resume ctl-a
sleep 0.4; c=$(grep -c round "$TMP/ctl.console")
if [ "$c" -gt "$b" ]; then pass "control: resume continues it"; else fail "control: resume" "rounds $b -> $c"; fi
if "$P" stats ctl-a | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["exits"]["io"] > 0' 2>/dev/null; then
	pass "control: live stats are JSON"
else
	fail "control: stats" "$("$P" stats ctl-a 2>&1 | head -c 200)"
fi
run_vm ctl-dup run --engine kvm --name ctl-a --kernel "$GUESTS/hello.elf"
expect_err "control: a second VM with a live name is refused" 71 "already running"
"$P" stop ctl-a
wait $ctl_pid
rc=$?
if [ $rc -eq 0 ] && ! "$P" ls | grep -q ctl-a; then pass "control: stop ends the VM with status 0"; else fail "control: stop" "exit $rc"; fi
run_vm ctl-none stop no-such-vm
expect_err "control: unknown VM named in the error" 1 "no running VM named 'no-such-vm'"
unset POPEK_RUNTIME_DIR
