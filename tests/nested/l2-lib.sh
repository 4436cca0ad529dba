# Sourced by the L2 host's init scripts (l2-init.sh, l2-bench.sh) in the nested
# harness: mounts the file systems, loads KVM and defines the reporting helpers.
# Every result is a line "nested: ..." on the console; tests/nested/run.sh on
# the L1 host collects them.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mkdir -p /run && mount -t tmpfs tmpfs /run # popek keeps its control sockets in /run/popek

say() { echo "nested: $*"; }
pass() { say "PASS $1"; }
# One line: the harness reads results line by line, so a multi-line reason
# (a console or stderr tail) would lose everything after its first line.
fail() { say "FAIL $1: $(printf %s "$2" | tr '\n' ' ')"; }
now() { cut -d. -f1 /proc/uptime; }
param() { tr ' ' '\n' </proc/cmdline | sed -n "s/^nested\.$1=//p"; }

say "start (uptime $(now) s)"
for m in irqbypass kvm ccp kvm-amd; do
	insmod /lib/modules/$m.ko || fail "insmod $m" "see the kernel log above"
done
if [ -c /dev/kvm ]; then pass "kvm modules loaded, /dev/kvm present"; else fail "/dev/kvm" "missing after insmod"; fi
# Debugging aid: the L2's text symbols (kernel and kvm modules), to resolve
# the addresses the QEMU monitor shows when the L2 hangs.
[ "$(param kallsyms)" = 1 ] && grep -i ' t ' /proc/kallsyms | sed 's/^/K /'
