# A short run of every libFuzzer target (parsers and device models fed hostile
# bytes); `make fuzz` builds them, and longer runs are a matter of -max_total_time.
if make -s -C "$POPEK_ROOT" fuzz >"$TMP/fuzz-build.log" 2>&1; then
	for src in "$POPEK_ROOT"/tests/fuzz/fuzz_*.c; do
		n=$(basename "$src" .c)
		f=$POPEK_ROOT/build/fuzz/$n
		if (cd "$TMP" && timeout 60 "$f" -max_total_time=5 -rss_limit_mb=2048 >"$TMP/$n.log" 2>&1); then
			pass "fuzz: $n ($(grep -o 'Done [0-9]* runs' "$TMP/$n.log"), no crash)"
		else
			fail "fuzz: $n" "$(grep -m3 -E 'ERROR|SUMMARY|Assertion' "$TMP/$n.log" | tr '\n' ' ')"
		fi
	done
else
	fail "fuzz: build" "$(tail -5 "$TMP/fuzz-build.log" | tr '\n' ' ')"
fi
