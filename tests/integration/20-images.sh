# Everything a kernel file can get wrong is refused before the VM starts (exit 65).
hello=$GUESTS/hello.elf
head -c 100 "$hello" >"$TMP/truncated.elf"
run_vm img-trunc run --kernel "$TMP/truncated.elf"
expect_err "image: truncated ELF refused" 65 "outside the file|truncated|past the end"

echo "just text, no kernel" >"$TMP/text.bin"
run_vm img-text run --kernel "$TMP/text.bin"
expect_err "image: non-kernel file refused" 65 "not a kernel popek can boot"

run_vm img-missing run --kernel "$TMP/does-not-exist"
expect_err "image: missing file named" 65 "does-not-exist: No such file"

head -c $((3 << 20)) /dev/zero | cat "$hello" - >"$TMP/big.elf"
run_vm img-big run --kernel "$TMP/big.elf" --mem 2M
expect_err "image: image larger than RAM refused" 65 "larger than guest RAM"

python3 "$POPEK_ROOT/tests/integration/elfmod.py" overlap "$hello" "$TMP/overlap.elf"
run_vm img-overlap run --kernel "$TMP/overlap.elf"
expect_err "image: overlapping segments refused" 65 "overlap"

python3 "$POPEK_ROOT/tests/integration/elfmod.py" high "$hello" "$TMP/high.elf"
run_vm img-high run --kernel "$TMP/high.elf" --mem 16M
expect_err "image: segment beyond RAM refused" 65 "does not fit in guest RAM"

python3 "$POPEK_ROOT/tests/integration/elfmod.py" bios "$hello" "$TMP/bios.elf"
run_vm img-bios run --kernel "$TMP/bios.elf"
expect_err "image: segment over the reserved BIOS area refused" 65 "overlaps the reserved BIOS area"

run_vm img-initrd run --kernel "$hello" --initrd "$TMP/big.elf" --mem 4M
expect_err "image: initrd too large refused" 65 "initrd"

# A tiny multiboot kernel linked at 0x8000, where real-mode test kernels are
# (guests/lowtiny.S): it runs there intact, and its command line is its path,
# a space and --cmdline, as QEMU and GRUB pass it.
for e in kvm soft; do
	POPEK=$POPEK_ROOT/build/popek-san run_vm lowtiny-$e run --engine $e \
		--kernel "$GUESTS/lowtiny.elf" --cmdline "a=1 b"
	expect "image: $e: multiboot kernel at 0x8000; command line = path + arguments" 1 \
		"^lowtiny: cmdline: $GUESTS/lowtiny.elf a=1 b"
done

# A multiboot kernel linked low in conventional memory (guests/lowboot.c): it
# checks argv[0] on its command line, module 0 (= --initrd) and fw_cfg.
printf 'TOKEN42\nNR_CPUS=2\n' >"$TMP/lowboot.env"
for e in kvm soft; do
	POPEK=$POPEK_ROOT/build/popek-san run_vm lowboot-$e run --engine $e --kernel "$GUESTS/lowboot.elf"
	expect "image: $e: multiboot kernel at 0xa000, argv[0], no module, fw_cfg" 1 "PASS lowboot"
	POPEK=$POPEK_ROOT/build/popek-san run_vm lowboot-mod-$e run --engine $e \
		--kernel "$GUESTS/lowboot.elf" --initrd "$TMP/lowboot.env" --cpus 2 --mem 200M \
		--cmdline "module=TOKEN42 cpus=2 mem=200"
	# exit 1 is PASS; the module's string is its path, as QEMU gives it
	expect "image: $e: --initrd is multiboot module 0, fw_cfg CPU count and RAM size" 1 \
		"module 0 at .*string \"$TMP/lowboot.env\""
done
# The same checks under QEMU TCG, the reference.
if command -v qemu-system-x86_64 >/dev/null; then
	timeout 60 "$POPEK_ROOT/guests/run-qemu.sh" lowboot -initrd "$TMP/lowboot.env" -smp 2 -m 200 \
		-append "module=TOKEN42 cpus=2 mem=200" >"$TMP/lowboot-qemu.out" 2>&1
	RC=$? OUT=$TMP/lowboot-qemu.out ERR=$TMP/lowboot-qemu.out
	expect "image: lowboot passes under QEMU TCG too" 1 "PASS lowboot"
	timeout 60 "$POPEK_ROOT/guests/run-qemu.sh" lowtiny >"$TMP/lowtiny-qemu.out" 2>&1
	RC=$? OUT=$TMP/lowtiny-qemu.out ERR=$TMP/lowtiny-qemu.out
	expect "image: lowtiny passes under QEMU TCG too" 1 "PASS lowtiny"
else
	skip "image: lowboot and lowtiny under QEMU" "qemu-system-x86_64 is not installed"
fi

# A Linux kernel without --cmdline gets the default image's command line (a
# console, so it prints), and --cmdline +ARGS appends ARGS to it. Checked on
# the bzImage at once, without waiting for its console (slow on a loaded
# host): a snapshot right after the start must record that command line, and
# guest RAM must hold it where the loader put it for the kernel.
IMAGES=$POPEK_ROOT/images
if [ ! -f "$IMAGES/vmlinuz" ] || [ ! -f "$IMAGES/initramfs.cpio.gz" ]; then
	fail "image: Linux default command line" "images/ lacks the default image: run 'make image'"
else
	export POPEK_RUNTIME_DIR=$TMP/run
	want="console=ttyS0 panic=-1 cryptomgr.notests popek.marker=1"
	"$POPEK_ROOT/build/popek" run --engine soft --name img-linux --kernel "$IMAGES/vmlinuz" \
		--initrd "$IMAGES/initramfs.cpio.gz" --cmdline +popek.marker=1 >/dev/null \
		2>"$TMP/linux-default.err" </dev/null &
	lx_pid=$!
	for _ in $(seq 100); do
		"$POPEK_ROOT/build/popek" snapshot img-linux "$TMP/linux-default" --stop >/dev/null 2>&1 && break
		kill -0 $lx_pid 2>/dev/null || break
		sleep 0.1
	done
	kill $lx_pid 2>/dev/null
	wait $lx_pid
	got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["config"]["cmdline"])' \
		"$TMP/linux-default/snapshot.json" 2>&1)
	if [ "$got" = "$want" ] && grep -qaF "$want" "$TMP/linux-default/memory.bin"; then
		pass "image: Linux without a full --cmdline gets the default console; +ARGS appends"
	else
		fail "image: Linux default command line" "recorded '$got'; $(tail -c 200 "$TMP/linux-default.err")"
	fi
	unset POPEK_RUNTIME_DIR
fi
