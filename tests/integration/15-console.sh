# The console on a real terminal: raw mode, Ctrl-A h help, Ctrl-A x quits with
# status 0, and the terminal is restored on exit and when popek is killed.
for mode in quit sigterm; do
	python3 "$POPEK_ROOT/tests/console/terminal.py" "$POPEK_ROOT/build/popek" "$GUESTS/longrun.elf" $mode \
		>"$TMP/tty-$mode.json" 2>&1
	if python3 - "$TMP/tty-$mode.json" $mode <<'PY'; then
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert r["raw"], "terminal not in raw mode while the VM runs"
assert r["restored"], "terminal settings not restored"
if sys.argv[2] == "quit":
    assert r["help"] and r["exit"] == 0, r
else:
    assert r["exit"] == 143, r
PY
		pass "console: terminal raw while running, restored after $mode"
	else
		fail "console: $mode" "$(cat "$TMP/tty-$mode.json" | head -c 400)"
	fi
done
