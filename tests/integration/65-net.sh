# Networking (docs/networking.md): --net refusals without a guest, then one
# scenario with real components (tests/linux/net_test.py): libslirp user
# networking (DHCP, DNS through a test resolver, a download, hostfwd,
# restrict=on, snapshot/restore, capture), two popek VMs and a QEMU VM on one
# `popek switch`, and a tap in a network namespace. All on the soft engine.
export POPEK_RUNTIME_DIR=$TMP/run
P=$POPEK_ROOT/build/popek
IMAGES=$POPEK_ROOT/images

run_vm net-bad-kind run --net wifi --kernel "$GUESTS/hello.elf"
expect_err "net: an unknown backend is refused with the choices" 64 "start with user, tap=IFNAME or socket=PATH"
run_vm net-bad-fwd run --net user,hostfwd=tcp:8080 --kernel "$GUESTS/hello.elf"
expect_err "net: a malformed hostfwd is refused with its syntax" 64 "hostfwd=tcp:8080: use tcp:\[HOSTADDR\]:HOSTPORT-:GUESTPORT"
run_vm net-bad-mac run --net user,mac=01:00:5e:00:00:01 --kernel "$GUESTS/hello.elf"
expect_err "net: a multicast MAC is refused" 64 "mac=01:00:5e:00:00:01: .*not multicast"
run_vm net-no-switch run --net socket=$TMP/none.sock --kernel "$GUESTS/hello.elf"
expect_err "net: socket= without a switch names the fix" 64 "cannot connect: .*popek switch $TMP/none.sock"
run_vm net-restore-net restore $TMP/nothing --net user
expect_err "net: --net is a boot option, refused by restore" 64 "unknown or incomplete option '--net'"
# A test guest with a NIC boots and ends normally (jailed: the NIC's thread and
# libslirp's setup pass the seccomp filter).
run_vm net-hello run --net user,hostfwd=tcp::$((20000 + RANDOM % 20000))-:80 --kernel "$GUESTS/hello.elf" --cmdline greeting=1
expect "net: a guest with a user NIC runs jailed to its end" 1 "PASS hello"

if [ ! -f "$IMAGES/vmlinux" ] || [ ! -f "$IMAGES/initramfs.cpio.gz" ]; then
	fail "net" "images/ lacks the default image: run 'make image' (make test does)"
elif ! command -v qemu-system-x86_64 >/dev/null || ! command -v ip >/dev/null ||
	! command -v unshare >/dev/null; then
	fail "net" "needs qemu-system-x86_64, ip and unshare (scripts/install-deps.sh)"
else
	timeout 400 python3 "$POPEK_ROOT/tests/linux/net_test.py" "$P" "$IMAGES" "$TMP" >"$TMP/net.log" 2>&1
	rc=$?
	grep -v -E '^(ok|FAIL) ' "$TMP/net.log"
	while IFS= read -r line; do
		case $line in
		"ok   "*) pass "${line#ok   }" ;;
		"FAIL "*) name=${line#FAIL }; fail "${name%%: *}" "${name#*: }" ;;
		esac
	done <"$TMP/net.log"
	[ $rc = 0 ] || fail "net scenario" "ended with status $rc: $(tail -c 300 "$TMP/net.log")"
	grep -q "scenario took" "$TMP/net.log" || fail "net scenario" "did not run to its end"
fi
unset POPEK_RUNTIME_DIR
