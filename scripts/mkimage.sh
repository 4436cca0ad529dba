#!/bin/sh
# Build the default guest image from Debian packages only:
#   images/vmlinuz             Debian 12's stock kernel (bzImage)
#   images/vmlinux             the same kernel, decompressed to its ELF (skips in-guest XZ)
#   images/initramfs.cpio.gz   busybox + virtio modules + an /init that gives a shell
# Packages are cached in images/debs; nothing here needs root once they are fetched.
# Environment: IMAGES_DIR (default images/), KERNEL_PACKAGE (default: what
# linux-image-amd64 depends on).
set -eu
export LC_ALL=C

top=$(cd "$(dirname "$0")/.." && pwd)
out=${IMAGES_DIR:-$top/images}
debs=$out/debs
work=$out/work
mkdir -p "$debs"

# Modules the guest loads, by name; their depends= are resolved below.
MODULES="virtio_pci virtio_blk virtio_console virtio_rng pvpanic_pci virtio_net virtiofs vsock
	vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport"
# popek-oci's agent (build/popek-agent, rdinit=/sbin/popek-agent) also loads
# these, listed in /etc/modules.agent: the container root is an ext4 disk
# (which asks the crypto API for crc32c: no modprobe in the guest to find it).
AGENT_MODULES="crc32c_generic ext4"
agent=$top/build/popek-agent
# The guest's AF_VSOCK relay (busybox nc has no vsock), built here static.
vsock_tool=$top/guests/vsock/vsock-tool.c

die() {
	echo "mkimage: $*" >&2
	exit 1
}
[ -x "$agent" ] || die "$agent is missing; run 'make build/popek-agent' (or 'make image')"

fetch() { # fetch PACKAGE: download into the cache unless a .deb of it is there
	if ! ls "$debs/$1"_*.deb >/dev/null 2>&1; then
		(cd "$debs" && apt-get download "$1") ||
			die "cannot download $1; run 'apt-get update' (needs Debian 12 sources)"
	fi
}

# The metapackage names the current ABI (linux-image-6.1.0-N-amd64).
kpkg=${KERNEL_PACKAGE:-}
if [ -z "$kpkg" ]; then
	kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)
fi
if [ -z "$kpkg" ]; then
	cached=$(ls "$debs"/linux-image-[0-9]*-amd64_*.deb 2>/dev/null | head -n1 || true)
	[ -n "$cached" ] || die "cannot resolve linux-image-amd64; run 'apt-get update'"
	kpkg=$(basename "$cached" | cut -d_ -f1)
fi
fetch "$kpkg"
fetch busybox-static
kdeb=$(ls "$debs/$kpkg"_*.deb | head -n1)
bdeb=$(ls "$debs"/busybox-static_*.deb | head -n1)

stamp="$(basename "$kdeb") $(basename "$bdeb") $(cksum <"$0") $(cksum <"$agent") $(cksum <"$vsock_tool")"
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] &&
	[ -f "$out/vmlinuz" ] && [ -f "$out/vmlinux" ] && [ -f "$out/initramfs.cpio.gz" ]; then
	echo "mkimage: $out is up to date ($kpkg)"
	exit 0
fi

rm -rf "$work"
mkdir -p "$work/kernel" "$work/busybox"
dpkg-deb -x "$kdeb" "$work/kernel"
dpkg-deb -x "$bdeb" "$work/busybox"
kver=${kpkg#linux-image-}
cp "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz"

# The bzImage payload is XZ. The magic can also occur by chance, so take the
# first offset whose stream decodes to an ELF.
found=
for o in $(grep -abo "$(printf '\3757zXZ')" "$out/vmlinuz" | cut -d: -f1); do
	tail -c +$((o + 1)) "$out/vmlinuz" | xz -dc --single-stream >"$work/vmlinux" 2>/dev/null || continue
	if [ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
		found=1
		break
	fi
done
[ -n "$found" ] || die "no XZ-compressed ELF inside $out/vmlinuz"
mv "$work/vmlinux" "$out/vmlinux"

# Initramfs staging tree.
root=$work/root
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/mnt" \
	"$root/lib/modules" "$root/etc"
cp "$work/busybox/bin/busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# name -> file index of every module in the package (names use _ for -).
mods=$work/kernel/lib/modules/$kver
find "$mods/kernel" -name '*.ko*' | while read -r f; do
	n=$(basename "$f")
	n=${n%%.ko*}
	echo "$(echo "$n" | tr - _) $f"
done >"$work/modindex"

modinfo_depends() { # the depends= field of a (possibly compressed) .ko
	case $1 in
	*.ko.xz) xz -dc "$1" ;;
	*.ko.zst) zstd -dc "$1" ;;
	*.ko.gz) gzip -dc "$1" ;;
	*) cat "$1" ;;
	esac | tr '\0' '\n' | sed -n 's/^depends=//p' | head -n1 | tr , ' '
}

# Depth-first: every module after its dependencies, each once. A module
# missing from the package is built into the kernel, so it needs no loading.
: >"$work/order"
resolve() {
	grep -qx "$1" "$work/order" && return 0
	f=$(awk -v n="$1" '$1 == n { print $2; exit }' "$work/modindex")
	[ -n "$f" ] || return 0
	for d in $(modinfo_depends "$f"); do
		resolve "$d"
	done
	grep -qx "$1" "$work/order" || echo "$1" >>"$work/order"
}
for m in $MODULES; do
	resolve "$m"
done
install_module() { # install_module NAME FILE: uncompressed into the initramfs
	case $2 in
	*.ko.xz) xz -dc "$2" >"$root/lib/modules/$1.ko" ;;
	*.ko.zst) zstd -dc "$2" >"$root/lib/modules/$1.ko" ;;
	*.ko.gz) gzip -dc "$2" >"$root/lib/modules/$1.ko" ;;
	*) cp "$2" "$root/lib/modules/$1.ko" ;;
	esac
}
for m in $(cat "$work/order"); do
	f=$(awk -v n="$m" '$1 == n { print $2; exit }' "$work/modindex")
	install_module "$m" "$f"
	echo "$m" >>"$root/etc/modules"
done

# The OCI agent and the modules only it needs, after the default ones.
mkdir -p "$root/sbin"
cp "$agent" "$root/sbin/popek-agent"
${CC:-gcc} -static -Os -s -Wall -Wextra -Werror -o "$root/bin/vsock-tool" "$vsock_tool" ||
	die "cannot build $vsock_tool static (needs gcc and libc6-dev)"
: >"$root/etc/modules.agent"
for m in $AGENT_MODULES; do
	before=$(wc -l <"$work/order")
	resolve "$m"
	for d in $(tail -n +$((before + 1)) "$work/order"); do
		f=$(awk -v n="$d" '$1 == n { print $2; exit }' "$work/modindex")
		install_module "$d" "$f"
		echo "$d" >>"$root/etc/modules.agent"
	done
done

cat >"$root/init" <<'INIT'
#!/bin/sh
# popek default guest: load the virtio drivers and give the console a shell.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/modules); do
	insmod /lib/modules/$m.ko || echo "popek-guest: cannot load $m"
done
hostname popek
# A NIC (popek's --net) comes up by DHCP in the background, so a guest
# without one boots as fast as before.
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
	ip link set eth0 up
	udhcpc -q -i eth0 -s /etc/udhcpc.script >/dev/null 2>&1 &
fi
echo "popek-guest: init ready"
# A shell with the console as its controlling tty (job control, Ctrl-C);
# when it exits the machine powers off instead of the kernel panicking.
setsid cttyhack sh -l
poweroff -f
INIT
chmod 755 "$root/init"
printf 'export PS1="popek:\\w# "\n' >"$root/etc/profile"
# udhcpc only reports a lease; this applies it (address, default route, DNS).
cat >"$root/etc/udhcpc.script" <<'DHCP'
#!/bin/sh
case $1 in
deconfig) ip addr flush dev "$interface" ;;
bound | renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	[ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
	: >/etc/resolv.conf
	for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
	# Linux skips IPv6 autoconfiguration (not even a link-local address)
	# when the link comes up while its carrier event is still queued, as
	# /init's early "ip link set up" often does: restart it, the link is ready.
	v6=/proc/sys/net/ipv6/conf/$interface/disable_ipv6
	if [ -w "$v6" ] && ! ip -6 addr show dev "$interface" | grep -q fe80; then
		echo 1 >"$v6"
		echo 0 >"$v6"
	fi
	echo "popek-guest: $interface has $ip" >/dev/console
	;;
esac
exit 0
DHCP
chmod 755 "$root/etc/udhcpc.script"

(cd "$root" && find . | sort | cpio -o -H newc --owner 0:0 --quiet) | gzip -9 >"$out/initramfs.cpio.gz"
echo "mkimage: built $out/vmlinuz, $out/vmlinux, $out/initramfs.cpio.gz ($kpkg; modules: $(tr '\n' ' ' <"$root/etc/modules"))"
rm -rf "$work"
echo "$stamp" >"$out/.stamp"
