#!/bin/sh
# /init of the L2 host in the nested harness's benchmark mode (run.sh --bench,
# driven by bench/nested-boot): boot time of the default Linux image to its
# init marker, popek (kvm engine) vs QEMU -accel kvm, inside the L2. Prints
# "nested: TIME LABEL SECONDS" per boot; the L1 host computes the table.
. /lib/nested.sh

runs=$(param runs)
: "${runs:=3}"
mem=256
cmdline="console=ttyS0 panic=-1 quiet cryptomgr.notests" # popek run's default, plus quiet
# nested.l3append=... (e.g. loglevel=7) is added to the guest's command line and
# every guest console is then logged, each line with its arrival time, to see
# where boot time goes (bench/nested-boot --phases).
l3log=$(param l3append | tr , ' ')
[ -n "$l3log" ] && cmdline="$cmdline $l3log"
initrd=/images/initramfs.cpio.gz
marker="popek-guest: init ready"
qemu_version=$(qemu-system-x86_64 --version | head -n1)
# nested.shmem_thp=always|advise|never: the L2's transparent huge pages for
# shmem (popek's guest RAM is a memfd only with a vhost-user device, which the
# benchmark has none of; both VMMs' RAM is anonymous memory they madvise).
thp=$(param shmem_thp)
[ -n "$thp" ] && echo "$thp" >/sys/kernel/mm/transparent_hugepage/shmem_enabled
say "bench: L2 THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled), shmem: $(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled)"
say "bench: $runs runs, $mem MiB, 1 vCPU, cmdline '$cmdline', $qemu_version"

# nested.kvmstat=1: KVM's counters (debugfs) for each guest at its marker,
# while it is the only VM: exits, NPT faults, I/O and MMIO exits...
kvmstat=$(param kvmstat)
[ -n "$kvmstat" ] && mount -t debugfs debugfs /sys/kernel/debug
kvm_counters() {
	for c in exits pf_fixed pf_taken io_exits mmio_exits irq_exits halt_exits \
		request_irq_exits irq_injections insn_emulation; do
		[ -f /sys/kernel/debug/kvm/$c ] && printf '%s=%s ' $c "$(cat /sys/kernel/debug/kvm/$c)"
	done
}

centis() { awk '{ printf "%d", $1 * 100 }' /proc/uptime; }

# time_boot LABEL CMD...: seconds from exec to the marker on the guest console.
# awk reads the console through a FIFO, logs it, and notes the uptime at the
# marker itself, so the shell's polling adds nothing to the time; it keeps
# draining the console, so the VMM runs on (and its KVM counters stay
# readable) until it is killed.
time_boot() {
	label=$1
	shift
	rm -f /tmp/console /tmp/marker
	mkfifo /tmp/console
	t0=$(centis)
	# busybox timeout execs the VMM itself, so $pid is the VMM.
	timeout 300 "$@" </dev/null >/tmp/console 2>/tmp/vmm.err &
	pid=$!
	# Each logged line carries its arrival, in seconds since exec, for
	# bench/nested-boot --phases.
	awk -v m="$marker" -v t0="$t0" '{ getline up <"/proc/uptime"; close("/proc/uptime");
			split(up, f, " "); c = int(f[1] * 100)
			printf "+%d.%02d %s\n", (c - t0) / 100, (c - t0) % 100, $0 >"/tmp/guest.log" }
		!done && index($0, m) { printf "%d\n", c >"/tmp/marker"; close("/tmp/marker"); done = 1 }' \
		</tmp/console &
	reader=$!
	while [ ! -s /tmp/marker ] && kill -0 $reader 2>/dev/null; do
		sleep 0.2
	done
	if [ -s /tmp/marker ]; then
		t=$(($(cat /tmp/marker) - t0))
		say "TIME $label $((t / 100)).$((t / 10 % 10))$((t % 10))"
		[ -n "$kvmstat" ] && say "KVMSTAT $label $(kvm_counters)"
	else
		fail "$label reached '$marker'" "$(tail -c 300 /tmp/vmm.err)"
	fi
	kill $pid 2>/dev/null
	wait $pid $reader 2>/dev/null
	[ -n "$l3log" ] && awk -v l="$label" '{ print "  | " l ": " $0 }' /tmp/guest.log
}

# popek's kernel cache (a bzImage's decompressed vmlinux) on the L2's tmpfs.
export POPEK_CACHE_DIR=/tmp/kcache

# popek_boot LABEL IMAGE [popek args...]; --verbose says how the kernel was
# loaded and how long that took, and the log keeps it.
popek_boot() {
	label=$1 image=$2
	shift 2
	time_boot "$label" popek run --engine kvm --mem ${mem}M --kernel "/images/$image" \
		--initrd $initrd --cmdline "$cmdline" --verbose "$@"
	grep '^popek: ' /tmp/vmm.err | while read -r l; do say "bench: $label: $l"; done
}
# -nodefaults: no NIC, VGA or monitor, so no option ROM to load; the default
# machine (pc, i440fx) with SeaBIOS for the bzImage and PVH for the vmlinux.
qemu_boot() {
	time_boot "qemu-$1" qemu-system-x86_64 -accel kvm -cpu host -m $mem -smp 1 -nodefaults \
		-no-user-config -display none -serial stdio -no-reboot -kernel "/images/$1" \
		-initrd $initrd -append "$cmdline"
}

# time_hello LABEL CMD...: the hello guest's whole run (exec -> exit), the
# mean of 10 runs (the uptime counts in centiseconds).
time_hello() {
	label=$1
	shift
	t0=$(centis)
	n=0
	while [ $n -lt 10 ]; do
		timeout 30 "$@" </dev/null >/tmp/hello.out 2>&1
		rc=$?
		grep -q "PASS hello" /tmp/hello.out || {
			fail "$label passed" "run $n, exit $rc: $(tail -c 300 /tmp/hello.out)"
			return
		}
		n=$((n + 1))
	done
	t=$(($(centis) - t0)) # centiseconds for 10 runs: milliseconds for one
	say "TIME $label $((t / 1000)).$(printf %03d $((t % 1000)))"
}

# Interleaved, so a drift in the L2's speed affects every variant alike.
variants=$(param variants | tr , ' ')
: "${variants:=popek-vmlinux popek-vmlinuz-first popek-vmlinuz popek-vmlinuz-guest qemu-vmlinux qemu-vmlinuz popek-hello qemu-hello}"
i=0
while [ $i -lt "$runs" ]; do
	for v in $variants; do
		case $v in
		popek-hello) time_hello $v popek run --engine kvm --mem 128M --kernel /guests/hello.elf ;;
		popek-vmlinuz-guest) popek_boot $v vmlinuz --decompress guest ;;
		popek-vmlinuz-nocache) popek_boot $v vmlinuz --kernel-cache off ;;
		popek-vmlinuz-first)
			rm -rf "$POPEK_CACHE_DIR" # decoded, and the cache's entry written
			popek_boot $v vmlinuz
			;;
		popek-*) popek_boot $v "${v#popek-}" ;;
		qemu-hello)
			time_hello $v qemu-system-x86_64 -accel kvm -M microvm -m 128M -nodefaults \
				-no-user-config -display none -serial stdio -no-reboot \
				-device isa-debug-exit,iobase=0xf4,iosize=4 -kernel /guests/hello.elf
			;;
		qemu-*) qemu_boot "${v#qemu-}" ;;
		*) fail "variant $v" "unknown (popek-vmlinux, popek-vmlinuz, popek-vmlinuz-first, popek-vmlinuz-nocache, popek-vmlinuz-guest, qemu-vmlinux, qemu-vmlinuz, popek-hello or qemu-hello)" ;;
		esac
	done
	i=$((i + 1))
done
say "done"
poweroff -f
