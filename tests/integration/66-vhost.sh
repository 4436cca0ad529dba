# vhost-user (docs/vhost-user.md): --fs refusals without a guest, then the
# virtio-fs scenario with real virtiofsd processes (tests/linux/fs_test.py),
# Linux on the soft engine, jailed.
P=$POPEK_ROOT/build/popek
IMAGES=$POPEK_ROOT/images

run_vm fs-no-tag run --fs "$TMP" --kernel "$GUESTS/hello.elf"
expect_err "vhost: --fs without a tag is refused with its syntax" 64 "use HOSTDIR,tag=TAG\[,ro\] or socket=PATH,tag=TAG"
run_vm fs-no-socket run --fs socket=$TMP/none.sock,tag=x --kernel "$GUESTS/hello.elf"
expect_err "vhost: --fs socket= without a backend names the fix" 64 "cannot connect to $TMP/none.sock: .*is the backend running"
run_vm fs-no-dir run --fs $TMP/no-such-dir,tag=x --kernel "$GUESTS/hello.elf"
expect_err "vhost: --fs of a missing folder says virtiofsd gave up" 71 "virtiofsd exited before it listened"

if [ ! -f "$IMAGES/vmlinux" ] || [ ! -f "$IMAGES/initramfs.cpio.gz" ]; then
	fail "vhost" "images/ lacks the default image: run 'make image' (make test does)"
elif [ ! -x /usr/lib/qemu/virtiofsd ]; then
	fail "vhost" "needs /usr/lib/qemu/virtiofsd (Debian's qemu-system-common: scripts/install-deps.sh)"
else
	timeout 300 python3 "$POPEK_ROOT/tests/linux/fs_test.py" "$P" "$IMAGES" "$TMP/fs" >"$TMP/fs.log" 2>&1
	scenario_report "$TMP/fs.log" vhost $?
fi
