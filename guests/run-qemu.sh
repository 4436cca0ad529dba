#!/bin/sh
# Run one test guest under QEMU: guests/run-qemu.sh NAME [extra qemu args...]
# NAME is a guest (build/guests/NAME.elf) or a path to an image.
# ACCEL=kvm selects KVM (default tcg); QEMU_TIMEOUT (seconds, default 60) bounds the run.
# Exit status is QEMU's: (guest status << 1) | 1 via isa-debug-exit, so 1 = PASS.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 NAME [qemu args...]" >&2; exit 2; }
name=$1
shift
dir=$(cd "$(dirname "$0")/.." && pwd)
case $name in
*/*) image=$name ;;
*) image=$dir/build/guests/$name.elf ;;
esac
[ -f "$image" ] || { echo "$0: $image not found; run 'make -C guests' first" >&2; exit 2; }
smp=1
case $(basename "$image") in smp.elf | apic.elf | kvmclock.elf) smp=2 ;; esac
exec timeout "${QEMU_TIMEOUT:-60}" qemu-system-x86_64 -accel "${ACCEL:-tcg}" -M pc -cpu max -m 128 \
	-smp "$smp" -display none -serial stdio -no-reboot -monitor none \
	-device isa-debug-exit,iobase=0xf4,iosize=4 -kernel "$image" "$@"
