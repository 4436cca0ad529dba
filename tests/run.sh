#!/usr/bin/env bash
# The whole test suite: unit tests (cmocka, sanitized) and integration tests
# (every test guest booted by build/popek and by the sanitized build/popek-san).
# Ends with the line "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
export POPEK_ROOT=$PWD
. tests/lib.sh

echo "== unit tests"
for t in build/tests/test_*; do
	[ -x "$t" ] || continue
	out=$("$t" 2>&1)
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' <<<"$out" | tail -1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' <<<"$out" | tail -1)
	PASSED=$((PASSED + ${p:-0}))
	FAILED=$((FAILED + ${f:-0}))
	if [ "$rc" -ne 0 ] && [ -z "$f" ]; then
		FAILED=$((FAILED + 1)) # crashed before cmocka could count
		echo "FAIL $(basename "$t") (exit $rc)"
	fi
	[ "$rc" -eq 0 ] || echo "$out" | grep -E 'FAILED|ERROR|Sanitizer|runtime error' | head -20
	echo "  $(basename "$t"): ${p:-0} passed, ${f:-0} failed"
done

for suite in tests/integration/*.sh; do
	echo "== $(basename "$suite" .sh)"
	. "$suite"
done

echo
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
