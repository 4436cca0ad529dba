# A short run of every libFuzzer target (parsers and device models fed hostile
# bytes), each starting from a copy of its in-tree corpus (tests/fuzz/corpus/)
# so that it begins at the coverage the campaign reached; `make fuzz` builds
# them, `make fuzz-campaign` runs the long campaign. The corpus must reach
# more than an empty input does: a harness that feeds its target wrongly (the
# control target once gave every input to a reader that refused a pipe) sends
# every input down the same path.
if make -s -C "$POPEK_ROOT" fuzz >"$TMP/fuzz-build.log" 2>&1; then
	for src in "$POPEK_ROOT"/tests/fuzz/fuzz_*.c; do
		n=$(basename "$src" .c)
		[ "$n" = fuzz_util ] && continue
		f=$POPEK_ROOT/build/fuzz/$n
		corpus=$TMP/corpus-$n
		mkdir -p "$corpus"
		cp "$POPEK_ROOT/tests/fuzz/corpus/${n#fuzz_}"/* "$corpus"/ 2>/dev/null
		seeds=$(ls "$corpus" | wc -l)
		mkdir -p "$TMP/empty"
		empty=$(cd "$TMP" && "$f" -runs=0 "$TMP/empty" 2>&1 | grep -oE 'INITED cov: [0-9]+' |
			grep -oE '[0-9]+$')
		if (cd "$TMP" && timeout 60 "$f" "$corpus" -max_total_time=5 -rss_limit_mb=2048 \
			-timeout=10 >"$TMP/$n.log" 2>&1); then
			cov=$(grep -oE 'INITED cov: [0-9]+' "$TMP/$n.log" | head -1 | grep -oE '[0-9]+$')
			if [ "${cov:-0}" -gt "${empty:-0}" ]; then
				pass "fuzz: $n ($(grep -o 'Done [0-9]* runs' "$TMP/$n.log"), corpus cov $cov (empty input $empty) from $seeds inputs, no crash)"
			else
				fail "fuzz: $n" "its $seeds corpus inputs reach ${cov:-?} edges, no more than an empty input ($empty): the harness does not feed the target"
			fi
		else
			fail "fuzz: $n" "$(grep -m3 -E 'ERROR|SUMMARY|Assertion|fuzz:' "$TMP/$n.log" | tr '\n' ' ')"
		fi
		rm -rf "$corpus"
	done
else
	fail "fuzz: build" "$(tail -5 "$TMP/fuzz-build.log" | tr '\n' ' ')"
fi
