# Helpers for integration tests. Each check prints one line and is counted.
PASSED=${PASSED:-0}
FAILED=${FAILED:-0}
SKIPPED=${SKIPPED:-0}
GUESTS=$POPEK_ROOT/build/guests
TMP=$(mktemp -d /tmp/popek-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
# popek's kernel cache (a bzImage's decompressed kernel): the test's own.
export POPEK_CACHE_DIR=$TMP/kernel-cache

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

# expect_in WHERE NAME WANT_RC PATTERN: RC must equal WANT_RC, the file WHERE
# (stdout or stderr of the last run_vm) must match PATTERN, and no sanitizer
# may have complained.
expect_in() {
	local where=$1 name=$2 want=$3 pat=$4
	if [ "$RC" -ne "$want" ]; then
		fail "$name" "exit $RC, expected $want; stderr: $(tail -c 400 "$ERR" | tr '\n' ' ')"
	elif ! grep -qE -- "$pat" "$where"; then
		fail "$name" "$(basename "$where") lacks /$pat/: $(tail -c 300 "$where" | tr '\n' ' ')"
	elif grep -qE 'AddressSanitizer|runtime error|LeakSanitizer' "$ERR"; then
		fail "$name" "sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error' "$ERR")"
	else
		pass "$name"
	fi
}

expect() { expect_in "$OUT" "$@"; }
expect_err() { expect_in "$ERR" "$@"; }

# dmacode_runs WHAT DISK: the dmacode guest (code a device read into a page,
# then run) on the soft engine, interpreted and translated, on DISK.
dmacode_runs() {
	local what=$1 disk=$2 jit
	for jit in off on; do
		run_vm "dmacode-$jit-${disk##*/}" run --engine soft --jit $jit \
			--kernel "$GUESTS/dmacode.elf" --disk "$disk"
		expect "$what (soft, jit $jit)" 1 \
			"dmacode: 40 rounds of 300 calls ran the code the device wrote"
	done
}

# grows_on PID CMD...: PID is alive and the number CMD prints grows past the
# one it printed first (within 20 s): a guest that goes on computing.
grows_on() {
	local pid=$1 n0
	shift
	n0=$("$@")
	for _ in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || return 1
		[ "$("$@")" -gt "${n0:-0}" ] 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# wait_for FILE PATTERN PID [TRIES]: poll (every 0.5 s, TRIES times, default
# 120) until FILE holds PATTERN (0) or PID has exited (1).
wait_for() {
	local file=$1 pat=$2 pid=$3 n=${4:-120}
	for _ in $(seq "$n"); do
		grep -q -- "$pat" "$file" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.5
	done
	return 1
}

# soft_boot_until NAME BIN KERNEL CACHE UNTIL [popek args...]: boot KERNEL on
# soft with the default image's initramfs (earlyprintk on) and the kernel
# cache in CACHE, until its console shows UNTIL or popek exits (at most
# 300 s); console in $TMP/NAME.console, stderr in $TMP/NAME.err.
soft_boot_until() {
	local name=$1 bin=$2 kernel=$3 cache=$4 until=$5 pid
	shift 5
	POPEK_CACHE_DIR=$cache "$POPEK_ROOT/build/$bin" run --engine soft --kernel "$kernel" \
		--initrd "$POPEK_ROOT/images/initramfs.cpio.gz" --console "file:$TMP/$name.console" \
		--cmdline "console=ttyS0 earlyprintk=ttyS0 panic=-1 cryptomgr.notests" "$@" \
		</dev/null >/dev/null 2>"$TMP/$name.err" &
	pid=$!
	wait_for "$TMP/$name.console" "$until" $pid 600
	kill $pid 2>/dev/null
	wait $pid 2>/dev/null
}

# A python scenario's log (one "ok NAME" / "FAIL NAME: why" line per check,
# "scenario took" at its end) as passes and failures; rc is its exit status.
scenario_report() {
	local log=$1 what=$2 rc=$3 line name
	grep -v -E '^(ok|FAIL) ' "$log"
	while IFS= read -r line; do
		case $line in
		"ok   "*) pass "${line#ok   }" ;;
		"FAIL "*) name=${line#FAIL }; fail "${name%%: *}" "${name#*: }" ;;
		esac
	done <"$log"
	[ "$rc" = 0 ] || fail "$what scenario" "ended with status $rc: $(tail -c 300 "$log")"
	grep -q "scenario took" "$log" || fail "$what scenario" "did not run to its end"
}
