# popek-oci (docs/oci.md) driven by real clients the test starts itself: podman 4.3
# (`--runtime build/popek-oci`, the image imported from a busybox rootfs) and a
# private containerd 1.6 (`ctr run --runc-binary`). Every case boots a real popek VM
# (Debian's kernel and the agent of the default image) on the soft engine.
OCI=$POPEK_ROOT/build/popek-oci
export POPEK_OCI_ENGINE=soft
OCI_IMG=localhost/popek-oci-test:latest
OCI_POD_IMG=localhost/popek-oci-pod:latest
OCI_T=${OCI_TIMEOUT:-240}

oci_need() { # oci_need CMD PACKAGE: the client is installed, else the case fails saying so
	command -v "$1" >/dev/null && return 0
	fail "oci-$1" "$1 is not installed: run scripts/install-deps.sh (Debian package $2)"
	return 1
}

oci_http_get() { # oci_http_get URL: the body, retried while the server comes up
	python3 - "$1" <<'PY'
import sys, time, urllib.request
for _ in range(20):
    try:
        print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().strip())
        break
    except OSError:
        time.sleep(0.5)
PY
}

# A busybox root file system from the image's own package cache.
oci_rootfs() {
	local deb
	deb=$(ls "$POPEK_ROOT"/images/debs/busybox-static_*.deb 2>/dev/null | head -n1)
	[ -n "$deb" ] || return 1
	mkdir -p "$TMP/bb" "$TMP/rootfs/bin" "$TMP/rootfs/etc" "$TMP/rootfs/tmp"
	dpkg-deb -x "$deb" "$TMP/bb" || return 1
	cp "$TMP/bb/bin/busybox" "$TMP/rootfs/bin/"
	for a in sh echo cat sleep true id hostname pwd tty stty env head grep ls wget nproc; do
		ln -sf busybox "$TMP/rootfs/bin/$a"
	done
	echo "root:x:0:0:root:/:/bin/sh" >"$TMP/rootfs/etc/passwd"
}

# --- the CLI on its own (no VM)
if [ ! -x "$OCI" ] || [ ! -f "$POPEK_ROOT/build/popek-agent" ]; then
	fail "oci-build" "build/popek-oci or build/popek-agent is missing: run 'make all'"
else
	out=$("$OCI" --version)
	[[ $out == "popek-oci version "*"spec: 1.0"* ]] && pass "oci-version" ||
		fail "oci-version" "$out"
	if "$OCI" features | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["ociVersionMax"]'; then
		pass "oci-features"
	else
		fail "oci-features" "not a features document"
	fi
	rm -f "$TMP/oci.log"
	"$OCI" --root "$TMP/ociroot" --log="$TMP/oci.log" --log-format=json state nosuch 2>/dev/null
	rc=$?
	if [ $rc -ne 0 ] && python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); assert d["level"]=="error" and "does not exist" in d["msg"] and d["time"]' "$TMP/oci.log"; then
		pass "oci-json-log"
	else
		fail "oci-json-log" "exit $rc, log: $(cat "$TMP/oci.log" 2>&1)"
	fi
	"$OCI" --root "$TMP/ociroot" delete --force nosuch && pass "oci-delete-force-gone" ||
		fail "oci-delete-force-gone" "delete --force of a missing container failed"
	# a bundle the runtime must refuse before it boots anything
	mkdir -p "$TMP/badbundle/rootfs"
	echo '{"process":{"args":"not-an-array"},"root":{"path":"rootfs"}}' >"$TMP/badbundle/config.json"
	err=$("$OCI" --root "$TMP/ociroot" create --bundle "$TMP/badbundle" bad 2>&1)
	[[ $err == *"process.args has the wrong type"* ]] && [ ! -e "$TMP/ociroot/bad" ] &&
		pass "oci-bad-spec" || fail "oci-bad-spec" "$err"
fi

# --- the runtime driven directly, as a subreaper like conmon: the pid-file process is
# our descendant, its exit status is the container's, stdio is ours. First with no VM
# template (a cold boot), then twice with a private template cache: the first create
# boots and snapshots the template, the second restores it.
oci_direct() { # oci_direct NAME CACHE: sets RC and OUT
	mkdir -p "$TMP/bundle"
	ln -sfn "$TMP/rootfs" "$TMP/bundle/rootfs"
	python3 - "$OCI" "$TMP/ociroot" "$TMP/bundle" "$1" "$2" >"$TMP/direct-$1.out" 2>"$TMP/direct-$1.err" <<'PY'
import ctypes, json, os, subprocess, sys
oci, root, bundle, cid, cache = sys.argv[1:6]
ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
cfg = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": "direct",
       "process": {"args": ["/bin/sh", "-c", "echo out-$(hostname); echo err >&2; : >/direct-wrote; exit 3"],
                   "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
       "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]}
json.dump(cfg, open(os.path.join(bundle, "config.json"), "w"))
env = dict(os.environ, POPEK_OCI_CACHE=cache)
r, w = os.pipe()
pidf = os.path.join(bundle, cid + ".pid")
c = subprocess.run([oci, "--root", root, "create", "--bundle", bundle, "--pid-file", pidf, cid],
                   stdin=subprocess.DEVNULL, stdout=w, stderr=w, env=env, timeout=400)
os.close(w)
if c.returncode:
    print("create failed", c.returncode, os.read(r, 4000)); sys.exit(1)
pid = int(open(pidf).read())
subprocess.run([oci, "--root", root, "start", cid], check=True, timeout=60)
_, status = os.waitpid(pid, 0)
out = b""
while True:
    b = os.read(r, 4096)
    if not b: break
    out += b
log = open(os.path.join(root, cid, "vm.log")).read()
print(json.dumps({"status": os.waitstatus_to_exitcode(status), "out": out.decode(),
                  "restored": "restored on" in log}))
subprocess.run([oci, "--root", root, "delete", cid], check=True, timeout=60)
PY
	RC=$?
	OUT=$(cat "$TMP/direct-$1.out")
}
oci_direct_check() { # oci_direct_check NAME WANT_RESTORED
	if [ $RC -eq 0 ] && python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["status"]==3 and sorted(d["out"].split())==["err","out-direct"] and d["restored"]==(sys.argv[2]=="1"), d' "$OUT" "$2" 2>"$TMP/check.err"; then
		pass "$1"
	else
		fail "$1" "exit $RC: $OUT $(tail -c 300 "$TMP/direct-$1.err") $(tail -1 "$TMP/check.err")"
	fi
}
if oci_need mke2fs e2fsprogs && oci_rootfs; then
	oci_direct cold off
	oci_direct_check "oci-direct-cold-boot" 0
	oci_direct tpl "$TMP/cache"
	oci_direct_check "oci-direct-template-first" 1
	oci_direct warm "$TMP/cache"
	oci_direct_check "oci-direct-restored" 1
	# the root shared by virtio-fs instead of copied: the guest's writes reach the host's
	# root (with ext4 they stayed in the VM's copy)
	if [ -x /usr/lib/qemu/virtiofsd ]; then
		[ ! -e "$TMP/rootfs/direct-wrote" ] || fail "oci-direct-ext4-copy" "a write in the VM reached the host's root"
		POPEK_OCI_ROOTFS=virtiofs oci_direct fs "$TMP/cache"
		oci_direct_check "oci-direct-virtiofs-root" 0
		[ -e "$TMP/rootfs/direct-wrote" ] && pass "oci-direct-virtiofs-write" ||
			fail "oci-direct-virtiofs-write" "the guest's write is not in the host's root"
		rm -f "$TMP/rootfs/direct-wrote"
	else
		fail "oci-direct-virtiofs-root" "no /usr/lib/qemu/virtiofsd: run scripts/install-deps.sh (Debian package qemu-system-common)"
	fi
	# a pod as the CRI makes one (tests/oci/pod.py): its containers in the sandbox's VM
	out=$(timeout 900 /usr/bin/python3 "$POPEK_ROOT/tests/oci/pod.py" "$OCI" "$TMP/ociroot" "$TMP" "$TMP/rootfs" "$TMP/cache" 2>"$TMP/pod.err")
	if python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d == {"created": True, "status_created": "created", "vms_with_3_containers": ["oci-pod-sandbox"], "status_c2": "running", "exec_c2": "c2\n", "c1_exit": 4, "c1_out": "2\nls: /c2-was-here: No such file or directory\n", "c2_exit": 137, "sandbox_after_c2": "running", "delete_c1": 0, "delete_c2": 0, "c3_exit": 0, "c3_out": "2\n", "delete_sandbox": 0, "vms_after": []}, d' "$out" 2>"$TMP/check.err"; then
		pass "oci-pod-one-vm"
	else
		fail "oci-pod-one-vm" "$out $(tail -c 300 "$TMP/pod.err") $(tail -1 "$TMP/check.err")"
	fi
fi

# --- podman
if oci_need podman podman && oci_need runc runc && oci_need mke2fs e2fsprogs; then
	if [ ! -x "$TMP/rootfs/bin/busybox" ]; then
		fail "oci-podman" "no busybox-static package in images/debs: run 'make image'"
	else
		cat >"$TMP/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000","nproc=32768:32768"]
[engine]
runtime = "runc"
EOF
		export CONTAINERS_CONF=$TMP/containers.conf
		tar -C "$TMP/rootfs" -cf "$TMP/rootfs.tar" .
		podman import "$TMP/rootfs.tar" "$OCI_IMG" >/dev/null 2>"$TMP/import.err" ||
			fail "oci-podman-import" "$(cat "$TMP/import.err")"
		P=(timeout "$OCI_T" podman --runtime "$OCI")
		out=$("${P[@]}" run --rm --network=none "$OCI_IMG" /bin/busybox echo hi 2>"$TMP/pm.err")
		rc=$?
		[ $rc -eq 0 ] && [ "$out" = hi ] && pass "oci-podman-echo" ||
			fail "oci-podman-echo" "exit $rc, out '$out', err $(tail -c 300 "$TMP/pm.err")"
		"${P[@]}" run --rm --network=none "$OCI_IMG" sh -c 'exit 7' 2>"$TMP/pm.err"
		rc=$?
		[ $rc -eq 7 ] && pass "oci-podman-exit-code" ||
			fail "oci-podman-exit-code" "exit $rc, expected 7: $(tail -c 300 "$TMP/pm.err")"
		out=$(printf 'line one\nline two\n' |
			"${P[@]}" run --rm -i --network=none "$OCI_IMG" sh -c 'cat; echo done' 2>"$TMP/pm.err")
		[ "$out" = "$(printf 'line one\nline two\ndone')" ] && pass "oci-podman-stdin" ||
			fail "oci-podman-stdin" "out '$out', err $(tail -c 300 "$TMP/pm.err")"
		# more input than a pipe holds, to a process that reads 4 bytes of it
		out=$(head -c 300000 /dev/zero |
			"${P[@]}" run --rm -i --network=none "$OCI_IMG" sh -c 'sleep 1; head -c 4 | busybox wc -c' 2>"$TMP/pm.err")
		[ "$out" = 4 ] && pass "oci-podman-stdin-unread" ||
			fail "oci-podman-stdin-unread" "out '$out', err $(tail -c 300 "$TMP/pm.err")"
		out=$("${P[@]}" run --rm -t --network=none "$OCI_IMG" sh -c 'tty; [ -t 0 ] && echo tty-in' 2>"$TMP/pm.err" | tr -d '\r')
		[ "$out" = "$(printf '/dev/pts/0\ntty-in')" ] && pass "oci-podman-tty" ||
			fail "oci-podman-tty" "out '$out', err $(tail -c 300 "$TMP/pm.err")"
		# the process spec and the OCI bind mounts podman makes (/etc/hostname, /etc/hosts,
		# /run/.containerenv) reach the guest
		out=$("${P[@]}" run --rm --network=none --hostname oci-host -u 1000:1000 -w /tmp -e FOO=bar \
			"$OCI_IMG" sh -c 'echo $FOO $(pwd) $(id -u):$(id -g) $(hostname) $(cat /etc/hostname); grep -c oci-host /etc/hosts; test -f /run/.containerenv && echo env-file' 2>"$TMP/pm.err")
		[ "$out" = "$(printf 'bar /tmp 1000:1000 oci-host oci-host\n1\nenv-file')" ] && pass "oci-podman-spec" ||
			fail "oci-podman-spec" "out '$out', err $(tail -c 300 "$TMP/pm.err")"
		# rlimits reach the process; linux.resources size the VM (2 vCPUs, 300 MiB of
		# RAM, of which the guest kernel reports a little less as MemTotal)
		out=$("${P[@]}" run --rm --network=none --ulimit nofile=1234:1234 --memory 300m --cpus 2 \
			"$OCI_IMG" sh -c 'ulimit -n; nproc; grep MemTotal /proc/meminfo' 2>"$TMP/pm.err")
		kb=$(echo "$out" | awk '/MemTotal/ { print $2 }')
		[ "$(echo "$out" | head -2)" = "$(printf '1234\n2')" ] && [ "${kb:-0}" -gt 200000 ] &&
			[ "$kb" -le 307200 ] && pass "oci-podman-resources" ||
			fail "oci-podman-resources" "out '$out', err $(tail -c 300 "$TMP/pm.err")"
		# networking: with the host's network the VM's user networking reaches a server on
		# the host's loopback as 10.0.2.2; --network=none leaves the VM without a NIC
		mkdir -p "$TMP/www" && echo hello-from-host >"$TMP/www/hello.txt"
		port=$((20000 + RANDOM % 20000))
		(cd "$TMP/www" && exec python3 -m http.server --bind 127.0.0.1 "$port" >/dev/null 2>&1) &
		www_pid=$!
		for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
		out=$("${P[@]}" run --rm --network=host "$OCI_IMG" sh -c "wget -q -O - http://10.0.2.2:$port/hello.txt" 2>"$TMP/pm.err")
		[ "$out" = hello-from-host ] && pass "oci-podman-net-host" ||
			fail "oci-podman-net-host" "out '$out', err $(tail -c 300 "$TMP/pm.err")"
		out=$("${P[@]}" run --rm --network=none "$OCI_IMG" sh -c "ls /sys/class/net; wget -q -O - http://10.0.2.2:$port/hello.txt 2>/dev/null || echo no-net" 2>"$TMP/pm.err")
		[ "$out" = "$(printf 'lo\nno-net')" ] && pass "oci-podman-net-none" ||
			fail "oci-podman-net-none" "out '$out', err $(tail -c 300 "$TMP/pm.err")"
		kill "$www_pid" 2>/dev/null
		wait "$www_pid" 2>/dev/null
		# podman's default bridge network: the VM's NIC is bridged to the container's veth
		# (a tap and tc redirects), so the guest has the container's IP; a published port
		# and the container's IP reach a server in the VM
		hport=$((20000 + RANDOM % 20000))
		"${P[@]}" run -d --name "popek-oci-web-$$" -p "127.0.0.1:$hport:8080" "$OCI_IMG" \
			sh -c 'mkdir -p /www; echo served-from-the-vm >/www/index.html; exec busybox httpd -f -p 8080 -h /www' >/dev/null 2>"$TMP/pm.err"
		ip=$(podman inspect -f '{{.NetworkSettings.IPAddress}}' "popek-oci-web-$$" 2>/dev/null)
		a=$(oci_http_get "http://127.0.0.1:$hport/")
		b=$(oci_http_get "http://$ip:8080/")
		c=$("${P[@]}" exec "popek-oci-web-$$" cat /sys/class/net/eth0/address 2>>"$TMP/pm.err")
		mac=$(podman inspect -f '{{.NetworkSettings.MacAddress}}' "popek-oci-web-$$" 2>/dev/null)
		[ "$a" = served-from-the-vm ] && [ "$b" = served-from-the-vm ] && [ -n "$mac" ] && [ "$c" = "$mac" ] &&
			pass "oci-podman-net-bridge" ||
			fail "oci-podman-net-bridge" "published port '$a', $ip:8080 '$b', guest MAC '$c' vs '$mac': $(tail -c 300 "$TMP/pm.err")"
		podman rm -f "popek-oci-web-$$" >/dev/null 2>&1
		# a detached container: exec (exit code, stdout), kill reaches the process,
		# pause/resume the VM, stop and rm
		name=popek-oci-test-$$
		"${P[@]}" run -d --name "$name" --network=none "$OCI_IMG" \
			sh -c 'trap "echo got-usr1" USR1; while :; do sleep 1; done' >/dev/null 2>"$TMP/pm.err"
		rc=$?
		if [ $rc -ne 0 ]; then
			fail "oci-podman-detached" "exit $rc: $(tail -c 300 "$TMP/pm.err")"
		else
			cid=$(podman inspect -f '{{.Id}}' "$name")
			grep -q "restored on" "/run/popek-oci/$cid/vm.log" 2>/dev/null &&
				pass "oci-podman-restored" ||
				fail "oci-podman-restored" "not started from a template: $(tail -2 "/run/popek-oci/$cid/vm.log" 2>&1)"
			out=$("${P[@]}" exec "$name" sh -c 'echo in-exec; exit 5' 2>"$TMP/pm.err")
			rc=$?
			[ $rc -eq 5 ] && [ "$out" = in-exec ] && pass "oci-podman-exec" ||
				fail "oci-podman-exec" "exit $rc, out '$out': $(tail -c 300 "$TMP/pm.err")"
			"${P[@]}" kill -s USR1 "$name" >/dev/null 2>&1
			for _ in $(seq 30); do
				podman logs "$name" 2>/dev/null | grep -q got-usr1 && break
				sleep 1
			done
			podman logs "$name" 2>/dev/null | grep -q got-usr1 && pass "oci-podman-kill-signal" ||
				fail "oci-podman-kill-signal" "the container never saw SIGUSR1"
			vm=$(ls /run/popek 2>/dev/null | grep -m1 "^oci-$(podman inspect -f '{{.Id}}' "$name" | cut -c1-20)")
			if "${P[@]}" pause "$name" >/dev/null 2>"$TMP/pm.err" &&
				[ "$(podman inspect -f '{{.State.Status}}' "$name")" = paused ] &&
				"$POPEK_ROOT/build/popek" ls 2>/dev/null | grep "${vm%.sock}" | grep -q paused &&
				"${P[@]}" unpause "$name" >/dev/null 2>>"$TMP/pm.err" &&
				"${P[@]}" exec "$name" true 2>>"$TMP/pm.err"; then
				pass "oci-podman-pause"
			else
				fail "oci-podman-pause" "$(tail -c 300 "$TMP/pm.err"); popek ls: $("$POPEK_ROOT/build/popek" ls 2>&1 | tr '\n' ' ')"
			fi
			"${P[@]}" stop -t 5 "$name" >/dev/null 2>"$TMP/pm.err" &&
				"${P[@]}" rm "$name" >/dev/null 2>>"$TMP/pm.err" &&
				! podman container exists "$name" && pass "oci-podman-stop-rm" ||
				fail "oci-podman-stop-rm" "$(tail -c 300 "$TMP/pm.err")"
		fi
		podman rm -f "$name" >/dev/null 2>&1
		# no VM outlives its container
		left=$(pgrep -f "popek run .*--name oci-" | wc -l)
		[ "$left" -eq 0 ] && pass "oci-podman-no-vm-left" ||
			fail "oci-podman-no-vm-left" "$left popek VMs still running"
	fi
fi

# --- containerd: a private instance, state and socket under $TMP
if oci_need containerd containerd && oci_need ctr containerd && oci_need podman podman &&
	[ -f "$TMP/rootfs.tar" ]; then
	cd_dir=$TMP/containerd
	mkdir -p "$cd_dir"
	cat >"$cd_dir/config.toml" <<EOF
version = 2
root = "$cd_dir/root"
state = "$cd_dir/state"
[grpc]
  address = "$cd_dir/c.sock"
# the CRI plugin with one runtime handler, popek: what a RuntimeClass names
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$OCI_POD_IMG"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$cd_dir/cni"
    conf_dir = "$cd_dir/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "popek"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.popek]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.popek.options]
      BinaryName = "$OCI"
      Root = "$cd_dir/oci"
EOF
	containerd --config "$cd_dir/config.toml" >"$cd_dir/log" 2>&1 &
	cd_pid=$!
	for _ in $(seq 50); do [ -S "$cd_dir/c.sock" ] && break; sleep 0.2; done
	C=(timeout "$OCI_T" ctr -a "$cd_dir/c.sock" -n popek-test)
	podman save --format oci-archive -o "$cd_dir/img.tar" "$OCI_IMG" >/dev/null 2>&1
	if ! "${C[@]}" image import "$cd_dir/img.tar" >/dev/null 2>"$cd_dir/import.err"; then
		fail "oci-ctr" "ctr image import failed: $(cat "$cd_dir/import.err")"
	else
		out=$("${C[@]}" run --rm --runc-binary "$OCI" "$OCI_IMG" c1 sh -c 'echo hi from ctr; exit 3' 2>"$cd_dir/run.err")
		rc=$?
		[ $rc -eq 3 ] && [ "$out" = "hi from ctr" ] && pass "oci-ctr-run" ||
			fail "oci-ctr-run" "exit $rc, out '$out': $(tail -c 300 "$cd_dir/run.err")"
		"${C[@]}" run -d --runc-binary "$OCI" "$OCI_IMG" c2 sleep 1000 >/dev/null 2>"$cd_dir/run.err"
		out=$("${C[@]}" task exec --exec-id e1 c2 sh -c 'echo exec-out; exit 4' 2>>"$cd_dir/run.err")
		rc=$?
		pids=$("${C[@]}" task ps c2 2>>"$cd_dir/run.err" | tail -n +2 | wc -l)
		[ $rc -eq 4 ] && [ "$out" = exec-out ] && [ "$pids" -ge 1 ] && pass "oci-ctr-exec-ps" ||
			fail "oci-ctr-exec-ps" "exit $rc, out '$out', ps rows $pids: $(tail -c 300 "$cd_dir/run.err")"
		"${C[@]}" task kill -s 9 c2 >/dev/null 2>&1
		for _ in $(seq 20); do
			"${C[@]}" task ls 2>/dev/null | grep -q "c2.*STOPPED" && break
			sleep 0.5
		done
		"${C[@]}" task ls 2>/dev/null | grep -q "c2.*STOPPED" && pass "oci-ctr-kill" ||
			fail "oci-ctr-kill" "$("${C[@]}" task ls 2>&1 | tr '\n' ' ')"
		"${C[@]}" task rm c2 >/dev/null 2>&1
		"${C[@]}" container rm c2 >/dev/null 2>&1
	fi
	# the CRI, as the kubelet drives it (tests/oci/cri.py): a pod sandbox and a container
	# that logs, with runtime handler popek; the image's CMD is the sandbox's process
	if ! /usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null; then
		fail "oci-cri" "python3-grpcio or python3-protobuf is missing: run scripts/install-deps.sh"
	elif ! podman import --change 'CMD ["/bin/sleep","100000"]' "$TMP/rootfs.tar" "$OCI_POD_IMG" >/dev/null 2>"$cd_dir/import.err" ||
		! podman save --format oci-archive -o "$cd_dir/pod.tar" "$OCI_POD_IMG" >/dev/null 2>>"$cd_dir/import.err" ||
		! timeout "$OCI_T" ctr -a "$cd_dir/c.sock" -n k8s.io image import "$cd_dir/pod.tar" >/dev/null 2>>"$cd_dir/import.err"; then
		fail "oci-cri" "image import into k8s.io failed: $(tail -c 300 "$cd_dir/import.err")"
	else
		out=$(timeout 900 /usr/bin/python3 "$POPEK_ROOT/tests/oci/cri.py" "$(command -v containerd)" "$cd_dir/c.sock" "$OCI_POD_IMG" "$cd_dir" "$POPEK_ROOT/build/popek" 2>"$cd_dir/cri.err")
		if python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d == {"runtime": "containerd", "pod_ready": True, "vms_with_pod": 1, "exit_code": 3, "log": ["hello from a popek pod", "1"], "vms_after_container": 1, "pods_left": 0, "vms_left": 0}, d' "$out" 2>"$TMP/check.err"; then
			pass "oci-cri-pod"
		else
			fail "oci-cri-pod" "$out $(tail -c 400 "$cd_dir/cri.err") $(tail -1 "$TMP/check.err")"
		fi
	fi
	kill "$cd_pid" 2>/dev/null
	wait "$cd_pid" 2>/dev/null
	umount -R "$cd_dir/root" "$cd_dir/state" 2>/dev/null
fi
podman rmi -f "$OCI_IMG" "$OCI_POD_IMG" >/dev/null 2>&1
unset CONTAINERS_CONF
