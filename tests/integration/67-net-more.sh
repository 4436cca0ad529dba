# Networking, second scenario (docs/networking.md): hostfwd refusals for IPv6
# without a guest, then tests/linux/net_more_test.py with real components:
# IPv6 on user networking (autoconfiguration, a download from [::1], hostfwd
# on [::1]), libslirp's lease table across a snapshot, and Debian's passt
# joined to a `popek switch`. All on the soft engine.
export POPEK_RUNTIME_DIR=$TMP/run
P=$POPEK_ROOT/build/popek
IMAGES=$POPEK_ROOT/images

run_vm net6-bad-family run --net "user,hostfwd=tcp:[::1]:8080-10.0.2.15:80" --kernel "$GUESTS/hello.elf"
expect_err "net IPv6: a hostfwd across address families is refused with the reason" 64 "libslirp forwards IPv4 to IPv4 and IPv6 to IPv6"
run_vm net6-bad-addr run --net "user,hostfwd=tcp:[::1:8080-:80" --kernel "$GUESTS/hello.elf"
expect_err "net IPv6: an unclosed bracket in hostfwd is refused with its syntax" 64 "use tcp:\[HOSTADDR\]:HOSTPORT-:GUESTPORT"
"$P" switch "$TMP/lan-none.sock" --connect "$TMP/no-passt.sock" >"$TMP/sw-none.out" 2>&1
rc=$?
if [ "$rc" = 71 ] && grep -q "cannot connect: .*start the peer first" "$TMP/sw-none.out"; then
	pass "net switch --connect: a peer that does not listen is refused with the fix"
else
	fail "net switch --connect: a peer that does not listen is refused with the fix" "rc $rc: $(cat "$TMP/sw-none.out")"
fi

if [ ! -f "$IMAGES/vmlinux" ] || [ ! -f "$IMAGES/initramfs.cpio.gz" ]; then
	fail "net more" "images/ lacks the default image: run 'make image' (make test does)"
else
	timeout 400 python3 "$POPEK_ROOT/tests/linux/net_more_test.py" "$P" "$IMAGES" "$TMP" >"$TMP/net-more.log" 2>&1
	scenario_report "$TMP/net-more.log" "net more" $?
fi
unset POPEK_RUNTIME_DIR
