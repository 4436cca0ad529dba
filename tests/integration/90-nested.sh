# The nested harness (tests/nested/run.sh): KVM inside QEMU TCG+SVM, popek
# booting the default Linux image on the kvm engine there. Each check the L2
# host reports counts as one test. POPEK_SKIP_NESTED=1 skips it (it takes a
# few minutes); missing images are built by `make image`.
if [ -n "${POPEK_SKIP_NESTED:-}" ]; then
	skip "nested" "POPEK_SKIP_NESTED is set"
elif ! command -v qemu-system-x86_64 >/dev/null; then
	fail "nested" "qemu-system-x86_64 is not installed: scripts/install-deps.sh installs it"
else
	"$POPEK_ROOT/tests/nested/run.sh" >"$TMP/nested.out" 2>&1
	nrc=$?
	while IFS= read -r line; do
		case $line in
		"nested: PASS "*) pass "nested: ${line#nested: PASS }" ;;
		"nested: FAIL "*) fail "nested" "${line#nested: FAIL }" ;;
		esac
	done <"$TMP/nested.out"
	if [ "$nrc" -ne 0 ] && ! grep -q '^nested: FAIL' "$TMP/nested.out"; then
		fail "nested" "harness exit $nrc: $(tail -c 400 "$TMP/nested.out" | tr '\n' ' ')"
	fi
	grep '^nested: [0-9]* passed' "$TMP/nested.out" || true
fi
