#!/bin/sh
# /init of the L2 host in the nested harness (runs inside QEMU TCG with SVM).
# Loads KVM (l2-lib.sh), then has popek boot test guests on the kvm engine.
# Every result is a line "nested: PASS name" or "nested: FAIL name: why".
. /lib/nested.sh

stages=$(param stages)
l3_kernel=$(param kernel)
: "${l3_kernel:=/images/vmlinux}"

# Milestone: a small test guest on the kvm engine.
popek run --engine kvm --kernel /guests/hello.elf --cmdline greeting=1 </dev/null >/tmp/hello.out 2>&1
rc=$?
if [ "$rc" = 1 ] && grep -q "PASS hello" /tmp/hello.out; then
	pass "popek runs hello.elf on the kvm engine"
else
	fail "popek runs hello.elf on the kvm engine" "exit $rc: $(head -c 300 /tmp/hello.out)"
fi

if [ "$stages" = hello ]; then
	say "done"
	poweroff -f
fi

# L3: the default image, driven through its console like a person would.
dd if=/dev/zero of=/tmp/disk.img bs=1M count=8 2>/dev/null
disk="--disk /tmp/disk.img"
popek help 2>&1 | grep -q -- --disk || { disk=; fail "popek --disk" "this popek has no virtio-blk yet"; }

# start_popek NAME ARGS...: run "popek ARGS" in the background, console on
# /tmp/NAME.*; fd 3 writes to its console.
start_popek() {
	out=/tmp/$1.out
	err=/tmp/$1.err
	rm -f /tmp/$1.in
	mkfifo /tmp/$1.in
	t0=$(now)
	n=$1
	shift
	popek "$@" </tmp/$n.in >"$out" 2>"$err" &
	pid=$!
	exec 3>/tmp/$n.in # the writer end: popek's stdin sees no EOF while we hold it
}

# start_l3 NAME KERNEL CPUS: boot the L3 guest, named NAME for the control channel.
start_l3() {
	start_popek "$1" run --name "$1" --engine kvm --cpus "$3" --kernel "$2" \
		--initrd /images/initramfs.cpio.gz --mem 512M $disk --cmdline "console=ttyS0 quiet"
}

# wait_for PATTERN SECONDS: until the L3 console shows PATTERN or popek exits.
# Deadlines are in uptime seconds: under TCG a loop turn takes far more than 1 s.
wait_for() {
	end=$(($(now) + $2))
	while [ "$(now)" -lt $end ]; do
		grep -qE "$1" "$out" && return 0
		kill -0 $pid 2>/dev/null || { grep -qE "$1" "$out"; return; }
		sleep 1
	done
	return 1
}

# wait_exit WHAT: popek must end by itself with status 0 within 120 s.
wait_exit() {
	end=$(($(now) + 120))
	while kill -0 $pid 2>/dev/null && [ "$(now)" -lt $end ]; do
		sleep 1
	done
	if kill -0 $pid 2>/dev/null; then
		kill $pid
		fail "$1" "popek still running 120 s later; console: $(tail -c 400 "$out")"
	else
		wait $pid
		rc=$?
		[ "$rc" = 0 ] && pass "$1, popek exited with status 0 ($(($(now) - t0)) s in all)" ||
			fail "$1 with status 0" "exit $rc: $(tail -c 300 "$err")"
	fi
	exec 3>&-
}

# show_tail TITLE N: the last N lines of the L3 console; awk ends every line,
# so a prompt without a newline cannot swallow the next "nested:" line.
show_tail() {
	say "$1:"
	tail -n "$2" "$out" | awk '{ print "  | " $0 }'
}

# Stress (run.sh --stress N): N boots of the 2-vCPU L3 to its shell, each
# powered off; every boot that does not get there says how it ended.
if [ "$stages" = stress ]; then
	runs=$(param runs)
	ok=0
	for i in $(seq "$runs"); do
		start_l3 "s$i" "$l3_kernel" 2
		if wait_for "popek-guest: init ready" 300; then
			echo 'poweroff -f' >&3
			wait_exit "stress boot $i" >/tmp/stress.res
			grep -q PASS /tmp/stress.res && ok=$((ok + 1)) || cat /tmp/stress.res
		else
			kill $pid 2>/dev/null
			wait $pid
			fail "stress boot $i reached its shell" "exit $?: console $(tail -c 400 "$out"); stderr $(tail -c 400 "$err")"
			exec 3>&-
		fi
		rm -f "/tmp/s$i.out" "/tmp/s$i.err"
	done
	say "stress: $ok of $runs boots reached the shell and powered off"
	say "done"
	poweroff -f
fi

start_l3 l3 "$l3_kernel" 2
if wait_for "popek-guest: init ready" 300; then
	pass "L3 Linux booted to its shell in $(($(now) - t0)) s"
	# Markers are computed by the shell so the echoed command lines never match.
	echo 'echo L3-SHELL-$((6 * 7))' >&3
	wait_for "L3-SHELL-42" 120 && pass "L3 shell ran a command" ||
		fail "L3 shell ran a command" "no answer on the console"
	# Both vCPUs came up: found in the MADT and started with INIT/SIPI.
	echo 'echo L3-CPUS-$(nproc)-$((3 * 3))' >&3
	wait_for "L3-CPUS-[0-9]+-9" 60
	grep -q "L3-CPUS-2-9" "$out" && pass "L3 runs on 2 vCPUs" ||
		fail "L3 runs on 2 vCPUs" "$(grep -o 'L3-CPUS-[0-9]*-9' "$out" | tail -1)"
	# A tar archive written straight to the disk: a file the host can
	# read back without the guest needing a filesystem driver.
	echo '[ -b /dev/vda ] && echo "written by L3 $((40 + 2))" >/tmp/f && tar -C /tmp -cf /dev/vda f && sync && echo L3-DISK-$((1 + 1))' >&3
	wait_for "L3-DISK-2" 60 || fail "L3 wrote the virtio-blk disk" "no /dev/vda, or the write failed"
	echo '[ -c /dev/hwrng ] && echo "RNG:$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d " \n")"; echo L3-RNG-$((2 + 1))' >&3
	wait_for "L3-RNG-3" 60
	if grep -qE "^RNG:[0-9a-f]{64}" "$out"; then
		pass "L3 read 32 bytes of entropy from virtio-rng"
	else
		fail "L3 read entropy from virtio-rng" "no /dev/hwrng, or it gave no data"
	fi
	# Snapshot at the shell (issue 6): the snapshot stops the VM, popek exits 0.
	ts=$(now)
	if popek snapshot l3 /tmp/snap --stop >/tmp/snap.out 2>&1 && [ -f /tmp/snap/snapshot.json ]; then
		pass "popek snapshot --stop saved the L3 at its shell ($(($(now) - ts)) s, $(du -sm /tmp/snap | cut -f1) MiB stored)"
	else
		fail "popek snapshot --stop saved the L3" "$(tail -c 300 /tmp/snap.out)"
		echo 'poweroff -f' >&3
	fi
else
	fail "L3 Linux booted to its shell" "no marker after $(($(now) - t0)) s: $(tail -c 600 "$out") $(tail -c 300 "$err")"
fi
wait_exit "L3 stopped by its snapshot"
show_tail "L3 console tail" 8

# Restore on the kvm engine: the guest continues at its shell prompt, so it
# answers commands at once; the disk is read after dropping the page cache,
# so the data comes back through the restored virtio-blk queues.
if [ -f /tmp/snap/snapshot.json ]; then
	start_popek l3-restored restore /tmp/snap --engine kvm --name l3-restored
	echo 'echo L3-RESTORED-$((5 * 5))' >&3
	wait_for "L3-RESTORED-25" 120 && pass "the restored L3 ran a command ($(($(now) - t0)) s after restore began)" ||
		fail "the restored L3 ran a command" "console: $(tail -c 400 "$out"); stderr: $(tail -c 300 "$err")"
	echo 'echo 3 >/proc/sys/vm/drop_caches; echo "DISK:$(tar -xOf /dev/vda f)"' >&3
	wait_for "DISK:written by L3 42" 60 && pass "the restored L3 read back its virtio-blk disk (page cache dropped)" ||
		fail "the restored L3 read back its disk" "console: $(tail -c 400 "$out")"
	echo 'poweroff -f' >&3
	wait_exit "the restored L3 powered off (ACPI S5)"
fi

got=$(tar -xOf /tmp/disk.img f 2>/dev/null)
if [ "$got" = "written by L3 42" ]; then
	pass "the host read back the file L3 wrote on virtio-blk"
else
	fail "the host read back the file L3 wrote on virtio-blk" "got '$(echo "$got" | head -c 100)'"
fi
show_tail "restored L3 console tail" 8

# Reboot: the stock kernel resets through ACPI's reset register / the i8042.
# This run boots the bzImage, so both image formats are covered.
start_l3 l3-reboot /images/vmlinuz 1
if wait_for "popek-guest: init ready" 300; then
	echo 'reboot -f' >&3
else
	fail "L3 booted for the reboot test" "console: $(tail -c 600 "$out"); stderr: $(tail -c 300 "$err")"
fi
wait_exit "L3 rebooted (keyboard-controller reset)"

# Networking on the kvm engine (docs/networking.md): an L3 with user
# networking downloads from an HTTP server on the L2's loopback (10.0.2.2),
# and over a tap the L2 made (tun.ko, busybox tunctl) from the same server.
# The same L3 (one boot less) has a disk under a policy (docs/policy.md):
# its first MiB denies writes.
dd if=/dev/urandom of=/tmp/pol.img bs=1M count=2 2>/dev/null
pol_sum=$(dd if=/tmp/pol.img bs=512 count=2048 2>/dev/null | md5sum)
echo 'deny disk write sectors 0-2047' >/tmp/deny.policy
ip link set lo up
mkdir -p /tmp/www && echo "served by L2 $((6 * 7))" >/tmp/www/f
httpd -p 8000 -h /tmp/www
insmod /lib/modules/tun.ko || fail "insmod tun" "see the kernel log above"
tunctl -t ntap0 >/dev/null && ip addr add 10.4.0.1/24 dev ntap0 && ip link set ntap0 up ||
	fail "a tap in the L2" "tunctl or ip failed"
start_popek l3-net run --name l3-net --engine kvm --kernel "$l3_kernel" \
	--initrd /images/initramfs.cpio.gz --mem 256M --net user --net tap=ntap0 \
	--disk /tmp/pol.img --policy /tmp/deny.policy --cmdline "console=ttyS0 quiet"
if wait_for "popek-guest: eth0 has" 300; then
	echo 'echo "NET:$(wget -q -O - http://10.0.2.2:8000/f)"' >&3
	wait_for "NET:served by L2 42" 120 &&
		pass "L3 on user networking downloaded a file from the L2's HTTP server" ||
		fail "L3 on user networking downloaded a file" "console: $(tail -c 400 "$out")"
	echo 'ip addr add 10.4.0.2/24 dev eth1; ip link set eth1 up; sleep 2; echo "TAP:$(wget -q -O - http://10.4.0.1:8000/f)"' >&3
	wait_for "TAP:served by L2 42" 120 &&
		pass "L3 over a tap downloaded a file from the L2's HTTP server" ||
		fail "L3 over a tap downloaded a file" "console: $(tail -c 400 "$out")"
	# conv=fsync: busybox's dd may write through the page cache even with
	# oflag=direct, and a failed write-back is reported only to a sync.
	echo 'echo x | dd of=/dev/vda bs=512 conv=sync,fsync oflag=direct; echo "DENIED:$?"' >&3
	wait_for "DENIED:[0-9]" 60 && grep -qE "DENIED:[1-9]" "$out" &&
		grep -q "I/O error, dev vda, sector 0" "$out" &&
		pass "L3 under deny disk write sectors 0-2047: its write to sector 0 fails with an I/O error" ||
		fail "L3's denied disk write fails with an I/O error" "console: $(tail -c 400 "$out")"
	echo 'echo POLICY-MARK-42 | dd of=/dev/vda bs=512 seek=2048 conv=sync,fsync oflag=direct; echo "ALLOWED:$?"' >&3
	wait_for "ALLOWED:[0-9]" 60
	echo 'poweroff -f' >&3
else
	fail "L3 with user networking got a DHCP lease" "console: $(tail -c 600 "$out"); stderr: $(tail -c 300 "$err")"
	echo 'poweroff -f' >&3
fi
wait_exit "L3 with two NICs powered off"
if [ "$(dd if=/tmp/pol.img bs=512 count=2048 2>/dev/null | md5sum)" = "$pol_sum" ] &&
	dd if=/tmp/pol.img bs=512 skip=2048 count=1 2>/dev/null | grep -q POLICY-MARK-42; then
	pass "the disk file: sectors 0-2047 untouched, the L3's write to sector 2048 arrived"
else
	fail "the disk file under the policy" "first MiB changed, or no mark at sector 2048 (console: $(tail -c 300 "$out"))"
fi
show_tail "networked L3 console tail" 6
say "done"
poweroff -f
