# virtio-vsock (docs/vsock.md): --vsock refusals without a guest, then the
# scenario with a default-image Linux guest on the soft engine, jailed
# (tests/linux/vsock_test.py): host ↔ guest streams over the Unix sockets,
# refusals both ways, snapshot and restore.
P=$POPEK_ROOT/build/popek
IMAGES=$POPEK_ROOT/images

run_vm vsock-cid run --vsock cid=2,uds=$TMP/v.sock --kernel "$GUESTS/hello.elf"
expect_err "vsock: a CID below 3 is refused with the syntax" 64 "use cid=N,uds=PATH .N from 3 to 4294967294"
: >"$TMP/plain"
run_vm vsock-file run --vsock cid=3,uds=$TMP/plain --kernel "$GUESTS/hello.elf"
expect_err "vsock: uds= naming a file that is not a socket is refused" 64 "$TMP/plain exists and is not a socket: choose another uds= path or remove it"
run_vm vsock-dir run --vsock cid=3,uds=$TMP/no-such-dir/v.sock --kernel "$GUESTS/hello.elf"
expect_err "vsock: uds= in a missing folder names it" 64 "uds=$TMP/no-such-dir/v.sock: its folder: No such file or directory"
for jail in --jail --no-jail; do
	run_vm vsock-gone$jail run $jail --vsock cid=3,uds=$TMP/gone.sock --kernel "$GUESTS/hello.elf"
	if grep -q "PASS hello" "$OUT" && [ ! -e "$TMP/gone.sock" ]; then
		pass "vsock: the socket file is removed when the VM ends ($jail)"
	else
		fail "vsock: the socket file is removed when the VM ends ($jail)" "rc $RC, $(ls -l "$TMP/gone.sock" 2>&1), $(tail -c 200 "$ERR")"
	fi
done

if [ ! -f "$IMAGES/vmlinux" ] || [ ! -f "$IMAGES/initramfs.cpio.gz" ]; then
	fail "vsock" "images/ lacks the default image: run 'make image' (make test does)"
else
	timeout 600 python3 "$POPEK_ROOT/tests/linux/vsock_test.py" "$P" "$IMAGES" "$TMP/vsock" >"$TMP/vsock.log" 2>&1
	scenario_report "$TMP/vsock.log" vsock $?
fi
