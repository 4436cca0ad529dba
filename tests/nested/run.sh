#!/bin/sh
# Nested harness: QEMU TCG with SVM boots Debian's kernel as an L2 host whose
# initramfs holds popek, its libraries, the kvm modules and the default guest
# image; inside it popek boots guests on the real kvm engine (l2-init.sh).
#
#   tests/nested/run.sh            all stages (hello guest, then L3 Linux)
#   tests/nested/run.sh --hello    only the milestone: KVM in L2, hello.elf on kvm
#   tests/nested/run.sh --stress N N boots of the 2-vCPU L3, counting those
#                                  that do not reach the shell (not in make test)
#   tests/nested/run.sh --bench    boot-time benchmark, popek vs QEMU -accel kvm
#                                  (l2-bench.sh; bench/nested-boot prints the table)
#
# The L3 guest boots the vmlinux; the reboot check boots the bzImage.
# Environment: NESTED_TIMEOUT (seconds, default 900), NESTED_L3_KERNEL
# (the main L3 run's kernel: vmlinux or vmlinuz), NESTED_BENCH_RUNS (boots per
# variant in --bench mode, default 3), NESTED_BENCH_VARIANTS (comma-separated,
# default all but popek-vmlinuz-nocache: popek-vmlinux,popek-vmlinuz-first,
# popek-vmlinuz,popek-vmlinuz-guest,qemu-vmlinux,qemu-vmlinuz,popek-hello,
# qemu-hello),
# NESTED_L2_APPEND (more L2 kernel parameters, for debugging: "loglevel=5
# softlockup_all_cpu_backtrace=1"; "nokaslr nested.kallsyms=1" logs the L2's
# text symbols as "K ..." lines). While the L2 runs, its QEMU monitor listens on
# build/nested/monitor.sock (build/nested/bench/ in --bench mode): "info
# registers -a" there shows where a hung L2 is.
# Exit status 0 when every check passed.
set -eu
export LC_ALL=C
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/build/nested
images=$top/images
stages=all
case ${1:-} in
--hello) stages=hello ;;
--stress)
	stages=stress
	NESTED_BENCH_RUNS=${2:?--stress needs a number of boots}
	;;
--bench)
	stages=bench
	out=$out/bench # its own root, image and log: it may run beside the test
	;;
esac
timeout_s=${NESTED_TIMEOUT:-900}
l3_kernel=${NESTED_L3_KERNEL:-vmlinux}

die() {
	echo "nested: $*" >&2
	exit 2
}

command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is missing: apt-get install qemu-system-x86"
"$top/scripts/mkimage.sh" >/dev/null || die "make image failed"
[ -x "$top/build/popek" ] && [ -f "$top/build/guests/hello.elf" ] || die "build popek first: make"

kdeb=$(ls "$images"/debs/linux-image-[0-9]*-amd64_*.deb | head -n1)
bdeb=$(ls "$images"/debs/busybox-static_*.deb | head -n1)
kver=$(basename "$kdeb" | cut -d_ -f1)
kver=${kver#linux-image-}

root=$out/root
mkdir -p "$out"
rm -rf "$root"
mkdir -p "$root/bin" "$root/usr/bin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" \
	"$root/lib/modules" "$root/guests" "$root/images"

# busybox and the kvm modules, from the same packages as the default image.
dpkg-deb --fsys-tarfile "$bdeb" | tar -x -C "$out" ./bin/busybox
mv "$out/bin/busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
rmdir "$out/bin" 2>/dev/null || true
mods=$top/build/nested/kmods
stamp=$mods/.$kver.tun # the set grew by tun.ko: an older cache lacks it
if [ ! -f "$stamp" ]; then
	rm -rf "$mods"
	mkdir -p "$mods"
	dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$mods" --wildcards \
		"./lib/modules/$kver/kernel/virt/lib/irqbypass.ko*" \
		"./lib/modules/$kver/kernel/arch/x86/kvm/kvm.ko*" \
		"./lib/modules/$kver/kernel/arch/x86/kvm/kvm-amd.ko*" \
		"./lib/modules/$kver/kernel/drivers/crypto/ccp/ccp.ko*" \
		"./lib/modules/$kver/kernel/drivers/net/tun.ko*"
	touch "$stamp"
fi
for m in irqbypass kvm ccp kvm-amd tun; do
	f=$(find "$mods" -name "$m.ko*" | head -n1)
	[ -n "$f" ] || die "$m.ko is not in $kdeb"
	case $f in
	*.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
	*) cp "$f" "$root/lib/modules/$m.ko" ;;
	esac
done

# copy_bin FILE: FILE and every shared library it loads, at the same paths.
copy_bin() {
	for f in "$1" $(ldd "$1" | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$f")"
		cp -L "$f" "$root$f"
	done
}
cp "$top/build/popek" "$root/usr/bin/popek"
copy_bin "$root/usr/bin/popek"
if [ "$stages" = bench ]; then
	# QEMU finds its firmware relative to its binary (../share/qemu, ../share/seabios):
	# SeaBIOS and linuxboot_dma.bin boot the bzImage, pvh.bin the vmlinux, kvmvapic.bin
	# is loaded with -accel kvm, bios-microvm.bin (qboot) is microvm's firmware for
	# the hello guest. Found with strace; -nodefaults needs no other ROM.
	qemu=$(command -v qemu-system-x86_64)
	[ "$qemu" = /usr/bin/qemu-system-x86_64 ] || die "the benchmark expects Debian's /usr/bin/qemu-system-x86_64"
	copy_bin "$qemu"
	mkdir -p "$root/usr/share/qemu" "$root/usr/share/seabios"
	for f in kvmvapic.bin linuxboot_dma.bin pvh.bin bios-microvm.bin; do
		cp -L "/usr/share/qemu/$f" "$root/usr/share/qemu/" || die "/usr/share/qemu/$f is missing"
	done
	cp -L /usr/share/seabios/bios-256k.bin "$root/usr/share/seabios/" ||
		die "/usr/share/seabios/bios-256k.bin is missing: apt-get install seabios"
fi
cp "$top"/build/guests/*.elf "$root/guests/"
cp "$images/vmlinux" "$images/vmlinuz" "$images/initramfs.cpio.gz" "$root/images/"
mkdir -p "$root/lib"
cp "$top/tests/nested/l2-lib.sh" "$root/lib/nested.sh"
init=l2-init.sh
[ "$stages" = bench ] && init=l2-bench.sh
cp "$top/tests/nested/$init" "$root/init"
chmod 755 "$root/init"
# Uncompressed: the L2 kernel would spend a long time inflating under TCG.
(cd "$root" && find . | sort | cpio -o -H newc --owner 0:0 --quiet) >"$out/l2.cpio"

log=$out/l2.log
echo "nested: booting the L2 host (QEMU TCG, SVM); log in $log"
start=$(date +%s)
set +e
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -cpu qemu64,+svm,+npt -smp 2 -m 2048 \
	-display none -monitor "unix:$out/monitor.sock,server=on,wait=off" -serial "file:$log" -no-reboot \
	-kernel "$images/vmlinuz" -initrd "$out/l2.cpio" \
	-append "console=ttyS0 panic=-1 quiet nested.stages=$stages nested.kernel=/images/$l3_kernel nested.runs=${NESTED_BENCH_RUNS:-3} \
nested.variants=${NESTED_BENCH_VARIANTS:-popek-vmlinux,popek-vmlinuz-first,popek-vmlinuz,popek-vmlinuz-guest,qemu-vmlinux,qemu-vmlinuz,popek-hello,qemu-hello} \
${NESTED_L2_APPEND:-}"
qrc=$?
set -e
secs=$(($(date +%s) - start))

grep -a '^nested: \|^  | ' "$log" | tr -d '\r' || true
pass=$(grep -ac '^nested: PASS' "$log" || true)
fail=$(grep -ac '^nested: FAIL' "$log" || true)
want=2
[ "$stages" = all ] && want=18
if [ "$qrc" = 124 ]; then
	echo "nested: FAIL timed out after $timeout_s s; last lines of the L2 console:"
	tail -n 20 "$log"
	exit 1
fi
grep -aq '^nested: done' "$log" || {
	echo "nested: FAIL the L2 init did not finish; last lines of the L2 console:"
	tail -n 30 "$log"
	exit 1
}
[ "$stages" = bench ] && exit 0 # bench/nested-boot reads the TIME lines
echo "nested: $pass passed, $fail failed (of $want) in $secs s"
[ "$fail" = 0 ] && [ "$pass" -ge "$want" ]
