#!/bin/bash
# The fuzzing campaign (`make fuzz-campaign`): every libFuzzer target in turn,
# FUZZ_RUNS executions each (default 10 million; FUZZ_TIME caps the seconds
# per target, 0 = no cap), with value profiles (comparisons guide the
# mutations: a planted bug behind two byte compares in the UART was found in
# 2 minutes with them, not in 90 s without), starting from the in-tree corpus
# tests/fuzz/corpus/<target>/. Afterwards the corpus is minimized with
# -merge=1 (inputs named regress-* are kept as they are: they once crashed)
# and a table says, per target: executions, coverage (libFuzzer's cov and ft),
# corpus files and bytes, crashes. Crash inputs go to build/fuzz/artifacts/.
# FUZZ_JOBS targets run at once (default 1); FUZZ_UNTIL (a time for
# `date -d`) ends every run by then, stopping cleanly with its numbers, and
# skips targets not started by then; FUZZ_BIN names another directory of
# built targets (a copy, so that a rebuild does not replace a running one);
# FUZZ_NICE is the runs' niceness (default 15). Every finished run is also
# appended to tests/fuzz/campaign.tsv (date, commit of the sources, row), the
# in-tree record of which target ran how far on which code, kept across
# campaigns that each cover only some targets.
# Usage: campaign.sh [TARGET...]   (names without fuzz_; default: all)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${FUZZ_BIN:-$ROOT/build/fuzz}
CORPUS=$ROOT/tests/fuzz/corpus
ART=$ROOT/build/fuzz/artifacts
RUNS=${FUZZ_RUNS:-10000000}
TIME=${FUZZ_TIME:-0}
JOBS=${FUZZ_JOBS:-1}
NICE=${FUZZ_NICE:-15}
LEDGER=$ROOT/tests/fuzz/campaign.tsv
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
UNTIL=${FUZZ_UNTIL:+$(date -d "$FUZZ_UNTIL" +%s)}
mkdir -p "$ART"
targets=("$@")
if [ ${#targets[@]} = 0 ]; then
	for f in "$ROOT"/tests/fuzz/fuzz_*.c; do
		n=$(basename "$f" .c)
		[ "$n" = fuzz_util ] || targets+=("${n#fuzz_}")
	done
fi

# found TARGET: its crash, leak, timeout and out-of-memory inputs in $ART. Not
# its slow units: libFuzzer writes one for any input that took 10 s, which at
# nice 19 on a loaded host is mostly time the run was not scheduled (one such
# input took 0.1 s when run again).
found() { ls "$ART" | grep "^$1-" | grep -vc "^$1-slow-unit-" || true; }

# One target: fuzz, minimize, and leave its table row in $ART/$t.row.
run_target() { # TARGET, number of targets still to run with it
	local t=$1 f=$BIN/fuzz_$1 todo=$2 log=$ART/$1.log work merged before start rc secs execs last
	local cov ft crashes files bytes left limit=$TIME
	work=$(mktemp -d) merged=$(mktemp -d)
	mkdir -p "$CORPUS/$t"
	cp "$CORPUS/$t"/. "$work"/ -r 2>/dev/null
	before=$(found "$t")
	start=$(date +%s)
	if [ -n "$UNTIL" ]; then
		left=$((UNTIL - start))
		if [ "$left" -le 0 ]; then
			printf '%-16s not run: FUZZ_UNTIL passed\n' "$t" >"$ART/$t.row"
			rm -rf "$work" "$merged"
			return
		fi
		[ "$limit" != 0 ] || limit=$((left * JOBS / (todo + JOBS - 1)))
		[ "$limit" -le "$left" ] || limit=$left
		[ "$limit" -ge 1 ] || limit=1
	fi
	# A crash ends this target's run (its input is in $ART); the next target runs.
	(cd "$work" && nice -n "$NICE" "$f" "$work" -runs="$RUNS" -max_total_time="$limit" \
		-use_value_profile=1 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$ART/$t-" >"$log" 2>&1)
	rc=$?
	secs=$(($(date +%s) - start))
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*')
	ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*')
	crashes=$(($(found "$t") - before))
	[ "$rc" = 0 ] || [ "$crashes" -gt 0 ] || crashes="rc $rc"
	# Minimize: keep only inputs that reach new edges (not new hit counts,
	# -use_counters=0, so the corpus stays small), plus the regression inputs.
	"$f" -merge=1 -use_counters=0 -rss_limit_mb=2048 -timeout=10 "$merged" "$CORPUS/$t" "$work" \
		>"$ART/$t.merge.log" 2>&1
	if [ -n "$(ls "$merged")" ]; then
		find "$CORPUS/$t" -maxdepth 1 -type f ! -name 'regress-*' -delete
		cp "$merged"/* "$CORPUS/$t"/
	fi
	files=$(ls "$CORPUS/$t" | wc -l)
	bytes=$(cat "$CORPUS/$t"/* 2>/dev/null | wc -c)
	rm -rf "$work" "$merged"
	printf '%-16s %10s %7s %6s %7s %6s %9s %8s %6ss\n' "$t" "${execs:-?}" \
		"$(( ${execs:-0} / (secs > 0 ? secs : 1) ))" "${cov:-?}" "${ft:-?}" "$files" "$bytes" \
		"$crashes" "$secs" >"$ART/$t.row"
	cat "$ART/$t.row"
	printf '%s\t%s\t%s\n' "$(date -u +%FT%RZ)" "$COMMIT" "$(tr -s ' ' '\t' <"$ART/$t.row")" >>"$LEDGER"
}

for t in "${targets[@]}"; do
	[ -x "$BIN/fuzz_$t" ] || { echo "campaign: $BIN/fuzz_$t not built (make fuzz)" >&2; exit 2; }
	rm -f "$ART/$t.row"
done
for i in "${!targets[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n
	done
	run_target "${targets[$i]}" $((${#targets[@]} - i)) &
done
wait
echo
printf '%-16s %10s %7s %6s %7s %6s %9s %8s %7s\n' target executions exec/s cov ft files bytes \
	crashes time
failed=0
for t in "${targets[@]}"; do
	cat "$ART/$t.row" 2>/dev/null || printf '%-16s no result\n' "$t"
	# Column 8 is the crash count: anything but 0 (a count, "rc N") fails.
	[ "$(awk '{print $8}' "$ART/$t.row" 2>/dev/null)" = 0 ] || failed=1
done
exit $failed
