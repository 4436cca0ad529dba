# Debian's stock kernel with the busybox initramfs (make image) on the soft
# engine: shell, a command, virtio-rng entropy, a virtio-blk write read back on
# the host, SMP, and a clean power-off. (The kvm engine runs the same session
# inside the nested harness, tests/nested/.)
IMAGES=$POPEK_ROOT/images
if [ ! -f "$IMAGES/vmlinux" ] || [ ! -f "$IMAGES/initramfs.cpio.gz" ]; then
	fail "linux" "images/ lacks the default image: run 'make image' (make test does)"
else
	for cpus in 1 2; do
		disk=$TMP/linux-$cpus.img
		truncate -s 16M "$disk"
		python3 "$POPEK_ROOT/tests/linux/session.py" "$POPEK_ROOT/build/popek" "$IMAGES" soft $cpus \
			"$disk" 900 >"$TMP/linux-$cpus.json"
		if python3 - "$TMP/linux-$cpus.json" $cpus <<'PY'; then
import json, sys
r = json.load(open(sys.argv[1]))
want_cpus = sys.argv[2]
problems = []
if "error" in r:
    problems.append(r["error"] + " | " + r.get("tail", "")[-200:] + " | " + r.get("stderr", ""))
else:
    if r["echo"] != "hello from the guest": problems.append("echo: " + r["echo"])
    if r["nproc"] != want_cpus: problems.append("nproc: " + r["nproc"])
    if r["rng_current"] != "virtio_rng.0": problems.append("rng: " + r["rng_current"])
    e = r["entropy"]
    if len(e) != 64 or len(set(e)) < 8: problems.append("entropy: " + e)
    if r["disk_head"] != r["disk_token"]: problems.append("disk: " + r["disk_head"])
    if r["exit_code"] != 0: problems.append("exit code %d" % r["exit_code"])
    print("  soft, %s vCPU: shell after %.1f s, whole session %.1f s" % (want_cpus, r["prompt_seconds"], r["total_seconds"]))
if problems:
    print("  " + "; ".join(problems))
    sys.exit(1)
PY
			pass "linux on soft, $cpus vCPU: shell, command, entropy, disk write, poweroff"
		else
			fail "linux on soft, $cpus vCPU" "see above"
		fi
	done
fi
