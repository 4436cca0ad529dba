# The kernel cache (src/boot/kcache.h) with the default image's bzImage on
# the soft engine: the first boot of a file decodes its payload and writes an
# entry; the next copies the kernel from it and boots; a changed kernel file,
# a damaged or truncated entry are refused and the entry written anew;
# --kernel-cache off and a missing or foreign cache directory leave it alone
# and still boot. --verbose says which happened.
IMAGES=$POPEK_ROOT/images
KC=$TMP/kcache
KERNEL=$TMP/vmlinuz
BANNER="Linux version 6."

# kc_boot NAME BIN UNTIL [popek args...]: boot $KERNEL with the cache in $KC
# until the console shows UNTIL or popek exits; console in $TMP/NAME.console,
# stderr in $TMP/NAME.err.
kc_boot() {
	local name=$1 bin=$2 until=$3
	shift 3
	soft_boot_until "$name" "$bin" "$KERNEL" "$KC" "$until" --verbose "$@"
}

# kc_check WHAT NAME UNTIL PATTERN...: the console showed UNTIL, stderr has a
# line matching each PATTERN (one with a leading ! must match none), and no
# sanitizer spoke.
kc_check() {
	local what=$1 name=$2 until=$3 err=$TMP/$2.err pat
	shift 3
	if ! grep -q "$until" "$TMP/$name.console" 2>/dev/null; then
		fail "$what" "console never showed '$until': $(tail -c 200 "$TMP/$name.console" 2>/dev/null | tr '\n' ' ') | $(tail -c 300 "$err" | tr '\n' ' ')"
		return
	fi
	for pat in "$@"; do
		case $pat in
		!*) ! grep -qE -- "${pat#!}" "$err" || {
			fail "$what" "stderr matches /${pat#!}/: $(tail -c 300 "$err" | tr '\n' ' ')"
			return
		} ;;
		*) grep -qE -- "$pat" "$err" || {
			fail "$what" "stderr lacks /$pat/: $(tail -c 300 "$err" | tr '\n' ' ')"
			return
		} ;;
		esac
	done
	if grep -qE 'AddressSanitizer|runtime error|LeakSanitizer' "$err"; then
		fail "$what" "sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error' "$err")"
	else
		pass "$what"
	fi
}

# The files in $KC and each one's inode and mtime: what a boot changed.
kc_state() { (cd "$KC" 2>/dev/null && stat -c '%n %i %Y.%y' -- * 2>/dev/null); }

# kc_same WHAT BEFORE: $KC holds exactly what it did.
kc_same() {
	if [ "$(kc_state)" = "$2" ]; then
		pass "$1"
	else
		fail "$1" "the cache directory changed: '$2' -> '$(kc_state)'"
	fi
}

DECODED="^popek: bzImage payload decompressed on the host in [0-9]+ ms, vmlinux entered at 0x1000000$"
COPIED="^popek: bzImage kernel copied from the kernel cache \($KC/kernel-[0-9a-f]{16}\) in [0-9]+ ms, vmlinux entered at 0x1000000$"
WRITTEN="^popek: kernel cache: written to $KC/kernel-[0-9a-f]{16}$"

if [ ! -f "$IMAGES/vmlinuz" ] || [ ! -f "$IMAGES/initramfs.cpio.gz" ]; then
	fail "kernel cache" "images/ lacks the default image: run 'make image' (make test does)"
else
	cp "$IMAGES/vmlinuz" "$KERNEL"
	kc_boot kc-miss popek "$BANNER"
	kc_check "kernel cache: the first boot decodes the payload and writes the entry" kc-miss \
		"$BANNER" "^popek: kernel cache: not used: $KC/kernel-[0-9a-f]{16}: no entry yet$" \
		"$DECODED" "$WRITTEN"
	n=$(find "$KC" -type f | wc -l)
	entry=$(find "$KC" -type f -name 'kernel-*' | head -n1)
	size=$(stat -c %s "$entry" 2>/dev/null)
	# The header and the vmlinux's PT_LOAD data, not its gaps or relocations.
	want=$(python3 - "$IMAGES/vmlinux" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
phoff, = struct.unpack_from('<Q', d, 0x20)
n, = struct.unpack_from('<H', d, 0x38)
print(512 + sum(struct.unpack_from('<IIQQQQQQ', d, phoff + 56 * i)[5] for i in range(n)
                if struct.unpack_from('<I', d, phoff + 56 * i)[0] == 1))
PY
)
	if [ "$n" = 1 ] && [ "$size" = "$want" ]; then
		pass "kernel cache: one entry of $size bytes (header and the vmlinux's segments)"
	else
		fail "kernel cache: one entry of the vmlinux's segments" "$n files, $size bytes, want 1 of $want"
	fi

	before=$(kc_state)
	kc_boot kc-hit popek "popek-guest: init ready"
	kc_check "kernel cache: the next boot copies the kernel from the entry and reaches init" \
		kc-hit "popek-guest: init ready" "$COPIED" "!decompressed on the host"
	kc_same "kernel cache: a hit leaves the entry as it was" "$before"
	kc_boot kc-hit-san popek-san "$BANNER"
	kc_check "kernel cache/popek-san: a hit boots the kernel" kc-hit-san "$BANNER" "$COPIED"

	kc_boot kc-off popek "$BANNER" --kernel-cache off
	kc_check "kernel cache: --kernel-cache off decodes the payload" kc-off "$BANNER" "$DECODED" \
		"^popek: kernel cache: off \(--kernel-cache off\)$" "!kernel cache \("
	kc_same "kernel cache: --kernel-cache off leaves the entry as it was" "$before"

	touch "$KERNEL"
	kc_boot kc-changed popek "$BANNER"
	kc_check "kernel cache: an entry made from an older version of the file is replaced" \
		kc-changed "$BANNER" "not used: .*: it was made from another version of the kernel file$" \
		"$DECODED" "$WRITTEN"

	# Damage a byte in the middle of the entry's data, then cut it short.
	python3 - "$entry" <<'PY'
import sys
f = open(sys.argv[1], 'r+b')
f.seek(0, 2)
f.seek(f.tell() // 2)
b = f.read(1)
f.seek(-1, 1)
f.write(bytes([b[0] ^ 0x10]))
PY
	kc_boot kc-damaged popek-san "$BANNER"
	kc_check "kernel cache/popek-san: an entry whose data was damaged is refused and rewritten" \
		kc-damaged "$BANNER" "not used: .*: its data fails its checksum$" "$DECODED" "$WRITTEN"
	kc_boot kc-rewritten popek "$BANNER"
	kc_check "kernel cache: the rewritten entry is used" kc-rewritten "$BANNER" "$COPIED"
	truncate -s 4096 "$entry"
	kc_boot kc-truncated popek "$BANNER"
	kc_check "kernel cache: a truncated entry is refused and rewritten" kc-truncated "$BANNER" \
		"not used: .*: it has 3584 bytes of data where its header says [0-9]+$" "$DECODED" \
		"$WRITTEN"
	if [ "$(find "$KC" -type f | wc -l)" = 1 ]; then
		pass "kernel cache: still one entry, no temporary file left behind"
	else
		fail "kernel cache: still one entry" "$(ls -la "$KC" | tr '\n' ' ')"
	fi

	# No directory to keep it in: the boot goes on without.
	env -u POPEK_CACHE_DIR -u HOME -u XDG_CACHE_HOME "$POPEK_ROOT/build/popek" run --engine soft --kernel "$KERNEL" \
		--initrd "$IMAGES/initramfs.cpio.gz" --console "file:$TMP/kc-nodir.console" \
		--cmdline "console=ttyS0 earlyprintk=ttyS0" --verbose </dev/null >/dev/null \
		2>"$TMP/kc-nodir.err" &
	pid=$!
	wait_for "$TMP/kc-nodir.console" "$BANNER" $pid 600
	kill $pid 2>/dev/null
	wait $pid 2>/dev/null
	kc_check "kernel cache: without POPEK_CACHE_DIR, XDG_CACHE_HOME or HOME the boot goes on" \
		kc-nodir "$BANNER" "$DECODED" \
		"^popek: kernel cache: no cache directory: set POPEK_CACHE_DIR, XDG_CACHE_HOME or HOME$"

	if [ "$(id -u)" = 0 ]; then
		before=$(kc_state)
		chown 65534 "$KC"
		kc_boot kc-foreign popek "$BANNER"
		kc_check "kernel cache: a cache directory of another user's is not used" kc-foreign \
			"$BANNER" "$DECODED" "^popek: kernel cache: $KC is not a directory of this user's: not used$"
		chown 0 "$KC"
		kc_same "kernel cache: nothing was written to another user's directory" "$before"
	else
		skip "kernel cache: a directory of another user's" "needs root to give one away"
	fi
fi
