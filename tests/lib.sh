# Helpers for integration tests. Each check prints one line and is counted.
PASSED=${PASSED:-0}
FAILED=${FAILED:-0}
SKIPPED=${SKIPPED:-0}
GUESTS=$POPEK_ROOT/build/guests
TMP=$(mktemp -d /tmp/popek-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

pass() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "skip $1: $2"; }

# run_vm OUTPREFIX popek-args...: runs popek with a timeout; sets RC, OUT (stdout
# file) and ERR (stderr file).
run_vm() {
	local name=$1 bin=${POPEK:-$POPEK_ROOT/build/popek}
	shift
	OUT=$TMP/$name.out
	ERR=$TMP/$name.err
	timeout "${VM_TIMEOUT:-60}" "$bin" "$@" >"$OUT" 2>"$ERR" </dev/null
	RC=$?
}

# expect NAME WANT_RC PATTERN: RC must equal WANT_RC and stdout must match PATTERN.
expect() {
	local name=$1 want=$2 pat=$3
	if [ "$RC" -ne "$want" ]; then
		fail "$name" "exit $RC, expected $want; stderr: $(tail -c 400 "$ERR" | tr '\n' ' ')"
	elif ! grep -qE -- "$pat" "$OUT"; then
		fail "$name" "output lacks /$pat/: $(tail -c 300 "$OUT" | tr '\n' ' ')"
	elif grep -qE 'AddressSanitizer|runtime error|LeakSanitizer' "$ERR"; then
		fail "$name" "sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error' "$ERR")"
	else
		pass "$name"
	fi
}

# expect_err NAME WANT_RC PATTERN: like expect, but PATTERN is matched in stderr.
expect_err() {
	local name=$1 want=$2 pat=$3
	if [ "$RC" -ne "$want" ]; then
		fail "$name" "exit $RC, expected $want; stderr: $(tail -c 400 "$ERR" | tr '\n' ' ')"
	elif ! grep -qE -- "$pat" "$ERR"; then
		fail "$name" "stderr lacks /$pat/: $(tail -c 300 "$ERR" | tr '\n' ' ')"
	else
		pass "$name"
	fi
}
