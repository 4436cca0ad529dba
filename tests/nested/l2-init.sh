#!/bin/sh
# /init of the L2 host in the nested harness (runs inside QEMU TCG with SVM).
# Loads KVM, then has popek boot test guests on the kvm engine. Every result
# is a line "nested: PASS name" or "nested: FAIL name: why" on the console;
# tests/nested/run.sh on the L1 host collects them.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mkdir -p /run && mount -t tmpfs tmpfs /run # popek keeps its control sockets in /run/popek

say() { echo "nested: $*"; }
pass() { say "PASS $1"; }
fail() { say "FAIL $1: $2"; }
now() { cut -d. -f1 /proc/uptime; }
param() { tr ' ' '\n' </proc/cmdline | sed -n "s/^nested\.$1=//p"; }

stages=$(param stages)
l3_kernel=$(param kernel)
: "${l3_kernel:=/images/vmlinux}"
say "start (uptime $(now) s)"

for m in irqbypass kvm ccp kvm-amd; do
	insmod /lib/modules/$m.ko || fail "insmod $m" "see the kernel log above"
done
if [ -c /dev/kvm ]; then pass "kvm modules loaded, /dev/kvm present"; else fail "/dev/kvm" "missing after insmod"; fi

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
mkfifo /tmp/l3.in
disk="--disk /tmp/disk.img"
popek help 2>&1 | grep -q -- --disk || { disk=; fail "popek --disk" "this popek has no virtio-blk yet"; }
t0=$(now)
popek run --engine kvm --kernel "$l3_kernel" --initrd /images/initramfs.cpio.gz --mem 512M \
	$disk --cmdline "console=ttyS0 quiet" </tmp/l3.in >/tmp/l3.out 2>/tmp/l3.err &
pid=$!
exec 3>/tmp/l3.in # the writer end: popek's stdin sees no EOF while we hold it

# wait_for PATTERN SECONDS: until the L3 console shows PATTERN or popek exits.
wait_for() {
	i=0
	while [ $i -lt "$2" ]; do
		grep -qE "$1" /tmp/l3.out && return 0
		kill -0 $pid 2>/dev/null || { grep -qE "$1" /tmp/l3.out; return; }
		sleep 1
		i=$((i + 1))
	done
	return 1
}

if wait_for "popek-guest: init ready" 600; then
	pass "L3 Linux booted to its shell in $(($(now) - t0)) s"
	# Markers are computed by the shell so the echoed command lines never match.
	echo 'echo L3-SHELL-$((6 * 7))' >&3
	wait_for "L3-SHELL-42" 120 && pass "L3 shell ran a command" ||
		fail "L3 shell ran a command" "no answer on the console"
	echo 'echo "written by L3 $((40 + 2))" >/tmp/f && tar -C /tmp -cf /dev/vda f && sync && echo L3-DISK-$((1 + 1))' >&3
	wait_for "L3-DISK-2" 120 || fail "L3 wrote the virtio-blk disk" "no confirmation on the console"
	echo 'echo "RNG:$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d " \n")"' >&3
	if wait_for "RNG:[0-9a-f]{64}" 120; then
		pass "L3 read 32 bytes of entropy from virtio-rng"
	else
		fail "L3 read entropy from virtio-rng" "$(grep RNG: /tmp/l3.out | tail -1)"
	fi
	echo 'poweroff -f' >&3
else
	fail "L3 Linux booted to its shell" "no marker after $(($(now) - t0)) s: $(tail -c 600 /tmp/l3.out) $(tail -c 300 /tmp/l3.err)"
fi

# popek must end by itself (power-off) with status 0.
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 120 ]; do
	sleep 1
	i=$((i + 1))
done
if kill -0 $pid 2>/dev/null; then
	kill $pid
	fail "L3 powered off" "popek still running 120 s after poweroff"
else
	wait $pid
	rc=$?
	[ "$rc" = 0 ] && pass "L3 powered off, popek exited with status 0 after $(($(now) - t0)) s" ||
		fail "L3 powered off with status 0" "exit $rc: $(tail -c 300 /tmp/l3.err)"
fi
exec 3>&-

got=$(tar -xOf /tmp/disk.img f 2>/dev/null)
if [ "$got" = "written by L3 42" ]; then
	pass "the host read back the file L3 wrote on virtio-blk"
else
	fail "the host read back the file L3 wrote on virtio-blk" "got '$(echo "$got" | head -c 100)'"
fi
say "L3 console tail:"
tail -n 15 /tmp/l3.out | sed 's/^/  | /'
say "done"
poweroff -f
