# Debian's stock kernel with the busybox initramfs (make image) on the soft
# engine, in x2APIC mode: shell, a command, virtio-rng entropy, a virtio-blk write read back on
# the host; with 1 vCPU a snapshot at the shell, a restore in which the guest
# runs a command and reads its disk again, and a clean power-off; with 2 vCPUs
# (SMP) a kernel panic that pvpanic turns into a crash report. (The kvm engine runs the same session
# inside the nested harness, tests/nested/.)
IMAGES=$POPEK_ROOT/images
if [ ! -f "$IMAGES/vmlinux" ] || [ ! -f "$IMAGES/initramfs.cpio.gz" ]; then
	fail "linux" "images/ lacks the default image: run 'make image' (make test does)"
else
	for cpus in 1 2; do
		disk=$TMP/linux-$cpus.img
		ending=snapshot
		[ $cpus = 2 ] && ending=panic
		truncate -s 16M "$disk"
		export POPEK_RUNTIME_DIR=$TMP/run
		python3 "$POPEK_ROOT/tests/linux/session.py" "$POPEK_ROOT/build/popek" "$IMAGES" soft $cpus \
			"$disk" 300 $ending >"$TMP/linux-$cpus.json"
		if python3 - "$TMP/linux-$cpus.json" $cpus $ending <<'PY'; then
import json, sys
r = json.load(open(sys.argv[1]))
want_cpus = sys.argv[2]
problems = []
if "error" in r:
    problems.append(r["error"] + " | " + r.get("tail", "")[-200:] + " | " + r.get("stderr", ""))
else:
    if r["echo"] != "hello from the guest": problems.append("echo: " + r["echo"])
    if r["nproc"] != want_cpus: problems.append("nproc: " + r["nproc"])
    if r["x2apic"] != "1": problems.append("x2apic enabled lines in dmesg: " + r["x2apic"])
    if r["rng_current"] != "virtio_rng.0": problems.append("rng: " + r["rng_current"])
    e = r["entropy"]
    if len(e) != 64 or len(set(e)) < 8: problems.append("entropy: " + e)
    if r["disk_head"] != r["disk_token"]: problems.append("disk: " + r["disk_head"])
    if sys.argv[3] == "snapshot":
        if r["snapshot_rc"] != 0 or r["snapshot_exit"] != 0: problems.append("snapshot: %s" % r)
        if r["after_restore"] != "hello after restore": problems.append("after restore: " + r["after_restore"])
        if r["disk_after_restore"] != r["disk_token"]: problems.append("disk after restore: " + r["disk_after_restore"])
        if len(r["entropy_after_restore"]) != 32: problems.append("entropy after restore")
        if r["exit_code"] != 0: problems.append("exit code %d after poweroff" % r["exit_code"])
    if sys.argv[3] == "panic" and (r["exit_code"] != 70 or "panicked (pvpanic)" not in r["stderr"]):
        problems.append("panic: exit %d, stderr %s" % (r["exit_code"], r["stderr"][-200:]))
    print("  soft, %s vCPU: shell after %.1f s, whole session %.1f s" % (want_cpus, r["prompt_seconds"], r["total_seconds"]))
if problems:
    print("  " + "; ".join(problems))
    sys.exit(1)
PY
			pass "linux on soft, $cpus vCPU: shell, command, entropy, disk write, $ending"
			[ $ending = snapshot ] && pass "linux on soft: snapshot at the shell, restored, command and disk read, poweroff"
		else
			fail "linux on soft, $cpus vCPU" "see above"
		fi
	done
fi
