# vhost-user-blk (docs/vhost-user.md): --disk refusals without a guest, then
# the scenario with real qemu-storage-daemon processes (tests/linux/blk_test.py),
# Linux on the soft engine, jailed.
IMAGES=$POPEK_ROOT/images
QSD=/usr/bin/qemu-storage-daemon

run_vm blk-no-socket run --disk socket=$TMP/none.sock --kernel "$GUESTS/hello.elf"
expect_err "vhost-blk: --disk socket= without a backend names the fix" 64 "cannot connect to $TMP/none.sock: .*is the backend running"
run_vm blk-socket-ro run --disk socket=$TMP/none.sock,ro --kernel "$GUESTS/hello.elf"
expect_err "vhost-blk: --disk socket=,ro is refused (the backend decides)" 64 "use FILE\[,ro\]\[,format=raw\] or socket=PATH"

if [ ! -x $QSD ] || ! command -v qemu-img >/dev/null; then
	fail "vhost-blk" "needs $QSD and qemu-img (Debian's qemu-system-common and qemu-utils: scripts/install-deps.sh)"
else
	# A qcow2 header with nothing behind it: the daemon gives up, popek says so.
	printf 'QFI\373\0\0\0\3' >"$TMP/broken.qcow2"
	run_vm blk-broken run --disk "$TMP/broken.qcow2" --kernel "$GUESTS/hello.elf"
	expect_err "vhost-blk: an image qemu-storage-daemon cannot open is refused" 71 "virtio-blk0 .*qemu-storage-daemon exited before it listened"
	qemu-img create -q -f qcow2 "$TMP/p.qcow2" 16M
	printf 'deny disk write sectors 0-7\n' >"$TMP/disk.policy"
	run_vm blk-policy run --disk "$TMP/p.qcow2" --policy "$TMP/disk.policy" --kernel "$GUESTS/hello.elf"
	expect_err "vhost-blk: a disk rule that cannot see a vhost-user disk is refused" 64 "virtio-blk0 is served by a vhost-user backend .*never reach popek"
	truncate -s 1M "$TMP/r.img"
	printf 'deny disk write dev virtio-blk0\n' >"$TMP/raw.policy"
	run_vm blk-policy-raw run --disk "$TMP/r.img" --disk "$TMP/p.qcow2" --policy "$TMP/raw.policy" --kernel "$GUESTS/hello.elf"
	expect "vhost-blk: a disk rule naming only the raw disk is accepted" 1 "PASS hello"
	# Code the backend wrote runs at once, though popek never sees the write
	# (the guest polls for the completion).
	qemu-img create -q -f qcow2 "$TMP/dmacode.qcow2" 1M
	dmacode_runs "vhost-blk: code the backend wrote runs at once" "$TMP/dmacode.qcow2"
fi

if [ ! -f "$IMAGES/vmlinux" ] || [ ! -f "$IMAGES/initramfs.cpio.gz" ]; then
	fail "vhost-blk" "images/ lacks the default image: run 'make image' (make test does)"
elif [ -x $QSD ] && command -v qemu-img >/dev/null; then
	mkdir -p "$TMP/blk"
	timeout 600 python3 "$POPEK_ROOT/tests/linux/blk_test.py" "$POPEK_ROOT/build/popek" "$IMAGES" "$TMP/blk" >"$TMP/blk.log" 2>&1
	scenario_report "$TMP/blk.log" vhost-blk $?
fi
