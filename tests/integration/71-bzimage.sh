# The default image's bzImage (images/vmlinuz, an xz payload) on the soft
# engine: by default popek decompresses the payload on the host and enters
# its vmlinux; --decompress guest boots it through the kernel's own
# decompressor. Both reach init. Which ran shows in guest RAM: a VM paused at
# its first UART access (the decompressor's, with earlyprintk, or the kernel
# proper's) holds the kernel's "Linux version" banner only if the host
# decompressed it. A payload damaged in the file is refused on the host
# (--verbose says why) and left to the kernel, whose decompressor then halts
# the guest. Without --verbose popek says nothing of this. Each boot has an
# empty kernel cache, so the host decodes the payload every time (the cache
# itself: 72-kernel-cache.sh). (The kvm engine boots the bzImage in the
# nested harness, tests/nested/.)
IMAGES=$POPEK_ROOT/images

# bz_boot NAME BIN KERNEL UNTIL [popek args...]: run KERNEL until its console
# shows UNTIL or popek exits (at most 300 s); console in $TMP/NAME.console,
# stderr in $TMP/NAME.err.
bz_boot() {
	local name=$1 bin=$2 kernel=$3 until=$4
	shift 4
	soft_boot_until "$name" "$bin" "$kernel" "$TMP/kc-$name" "$until" "$@"
}

# bz_check WHAT NAME UNTIL ERR_PATTERN: the console showed UNTIL, stderr
# matches ERR_PATTERN (if not empty), and no sanitizer spoke.
bz_check() {
	local what=$1 name=$2 until=$3 errpat=$4 con=$TMP/$2.console err=$TMP/$2.err
	if ! grep -q "$until" "$con" 2>/dev/null; then
		fail "$what" "console never showed '$until': $(tail -c 300 "$con" 2>/dev/null | tr '\n' ' ') | $(tail -c 200 "$err")"
	elif [ -n "$errpat" ] && ! grep -qE -- "$errpat" "$err"; then
		fail "$what" "stderr lacks /$errpat/: $(tail -c 300 "$err" | tr '\n' ' ')"
	elif grep -qE 'AddressSanitizer|runtime error|LeakSanitizer' "$err"; then
		fail "$what" "sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error' "$err")"
	else
		pass "$what"
	fi
}

if [ ! -f "$IMAGES/vmlinuz" ] || [ ! -f "$IMAGES/initramfs.cpio.gz" ]; then
	fail "bzimage" "images/ lacks the default image: run 'make image' (make test does)"
else
	marker="popek-guest: init ready"
	for bin in popek popek-san; do
		bz_boot bz-host-$bin $bin "$IMAGES/vmlinuz" "$marker" --verbose
		bz_check "bzimage/$bin: payload decompressed on the host, vmlinux reaches init" \
			bz-host-$bin "$marker" \
			"^popek: bzImage payload decompressed on the host in [0-9]+ ms, vmlinux entered at 0x1000000$"
	done
	bz_boot bz-guest popek "$IMAGES/vmlinuz" "$marker" --verbose --decompress guest
	bz_check "bzimage: --decompress guest boots through the kernel's decompressor to init" \
		bz-guest "$marker" "^popek: bzImage decompresses itself in the guest: --decompress guest$"

	# No --verbose: the default output stays as it was.
	bz_boot bz-quiet popek "$IMAGES/vmlinuz" "$marker"
	if grep -q "bzImage" "$TMP/bz-quiet.err"; then
		fail "bzimage: quiet without --verbose" "stderr: $(head -c 300 "$TMP/bz-quiet.err")"
	else
		bz_check "bzimage: no word of the loading without --verbose" bz-quiet "$marker" ""
	fi

	# Damage the xz stream 4 KiB into the payload (the setup header says
	# where: payload_offset past the setup sectors).
	python3 - "$IMAGES/vmlinuz" "$TMP/vmlinuz-bad" <<'PY'
import struct, sys
img = bytearray(open(sys.argv[1], 'rb').read())
at = ((img[0x1f1] or 4) + 1) * 512 + struct.unpack_from('<I', img, 0x248)[0] + 4096
for i in range(64):
    img[at + i] ^= 0xa5
open(sys.argv[2], 'wb').write(img)
PY
	for bin in popek popek-san; do
		bz_boot bz-bad-$bin $bin "$TMP/vmlinuz-bad" "System halted" --verbose
		bz_check "bzimage/$bin: a corrupt payload is refused on the host and halts the guest's decompressor" \
			bz-bad-$bin "System halted" \
			"^popek: bzImage decompresses itself in the guest: xz payload: xz data is corrupt"
		if ! grep -q "XZ-compressed data is corrupt" "$TMP/bz-bad-$bin.console"; then
			fail "bzimage/$bin: the guest's decompressor names the damage" \
				"$(tail -c 200 "$TMP/bz-bad-$bin.console" | tr '\n' ' ')"
		else
			pass "bzimage/$bin: the guest's decompressor names the damage"
		fi
	done

	# Paused at the first UART access, the VM is snapshotted and its RAM
	# searched for the banner.
	export POPEK_RUNTIME_DIR=$TMP/run
	echo "pause pio port 0x3f8-0x3ff" >"$TMP/bz-pause.policy"
	for mode in host guest; do
		name=bz-pause-$mode
		POPEK_CACHE_DIR=$TMP/kc-$name "$POPEK_ROOT/build/popek" run --engine soft --name $name \
			--kernel "$IMAGES/vmlinuz" \
			--initrd "$IMAGES/initramfs.cpio.gz" --policy "$TMP/bz-pause.policy" \
			--decompress $mode --cmdline "console=ttyS0 earlyprintk=ttyS0" \
			</dev/null >/dev/null 2>"$TMP/$name.err" &
		pid=$!
		paused=no
		for _ in $(seq 600); do
			"$POPEK_ROOT/build/popek" ls 2>/dev/null | grep -q "$name .* paused" && paused=yes && break
			kill -0 $pid 2>/dev/null || break
			sleep 0.2
		done
		"$POPEK_ROOT/build/popek" snapshot $name "$TMP/$name" --stop >/dev/null 2>&1
		kill $pid 2>/dev/null
		wait $pid 2>/dev/null
		banner=no
		grep -qaF "Linux version 6." "$TMP/$name/memory.bin" 2>/dev/null && banner=yes
		want=yes
		[ $mode = guest ] && want=no
		if [ $paused = no ]; then
			fail "bzimage: --decompress $mode, paused at the first UART access" \
				"the policy never paused it: $(tail -c 300 "$TMP/$name.err" | tr '\n' ' ')"
		elif [ ! -s "$TMP/$name/memory.bin" ]; then
			fail "bzimage: --decompress $mode, paused at the first UART access" \
				"no snapshot: $(tail -c 300 "$TMP/$name.err" | tr '\n' ' ')"
		elif [ $banner != $want ]; then
			fail "bzimage: --decompress $mode, paused at the first UART access" \
				"the kernel's banner in guest RAM: $banner, expected $want"
		else
			pass "bzimage: --decompress $mode, paused at the first UART access: banner in RAM $banner"
		fi
	done
	unset POPEK_RUNTIME_DIR
fi
