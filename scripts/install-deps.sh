#!/usr/bin/env bash
# Install the Debian 12 packages popek needs to build, test and run (needs root or sudo).
set -euo pipefail
pkgs=(build-essential clang clang-format make python3 pkg-config libjson-c-dev libcmocka-dev libzstd-dev zlib1g-dev liblzma-dev libxxhash-dev libseccomp-dev libslirp-dev
	qemu-system-x86 xz-utils cpio gzip ca-certificates time
	qemu-system-common)
# qcow2 and other images: qemu-storage-daemon (qemu-system-common) serves them, qemu-img makes and checks them
pkgs+=(qemu-utils)
# popek-oci: e2fsprogs builds the container disks; its tests drive podman and containerd
pkgs+=(e2fsprogs podman runc containerd)
# popek-oci: tc (iproute2) bridges a client network namespace to the VM's tap
pkgs+=(iproute2)
# the CRI test's client: gRPC and protobuf for Debian's python3 (stubs are made from containerd's own descriptor)
pkgs+=(python3-grpcio python3-protobuf)
# popek exec: its tests run static busybox applets
pkgs+=(busybox-static)
# networking: passt joins a popek switch segment in the tests (docs/networking.md)
pkgs+=(passt)
# bench/ peers measured side by side: gVisor (bench/exec, bench/oci) and qemu-user (bench/exec)
pkgs+=(runsc qemu-user-static)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
