# A pod driven through popek-oci directly, as containerd's runc shim drives it
# for CRI: a sandbox container boots the pod's VM; two containers of the pod
# (CRI annotations naming the sandbox) run in that same VM, each in its own
# root; the sandbox's delete stops the VM. Prints one JSON line of findings.
# usage: pod.py POPEK_OCI STATE_ROOT WORKDIR ROOTFS CACHE
import ctypes, json, os, subprocess, sys, time

oci, root, work, rootfs, cache = sys.argv[1:6]
ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER, as the shim is
env = dict(os.environ, POPEK_OCI_CACHE=cache)
SB = "pod-sandbox"
found = {}


def bundle(name, args, ann):
    b = os.path.join(work, name)
    os.makedirs(b, exist_ok=True)
    if not os.path.exists(os.path.join(b, "rootfs")):
        os.symlink(rootfs, os.path.join(b, "rootfs"))
    cfg = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": "podhost",
           "process": {"args": args, "env": ["PATH=/bin"], "cwd": "/",
                       "user": {"uid": 0, "gid": 0}},
           "annotations": ann}
    json.dump(cfg, open(os.path.join(b, "config.json"), "w"))
    return b


def run(*args, **kw):
    return subprocess.run([oci, "--root", root, *args], env=env, timeout=400,
                          stdin=subprocess.DEVNULL, capture_output=True, **kw)


def create(cid, b, out):
    pidf = os.path.join(work, cid + ".pid")
    c = subprocess.run([oci, "--root", root, "create", "--bundle", b, "--pid-file", pidf, cid],
                       env=env, timeout=400, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    if c.returncode:
        return None
    return int(open(pidf).read())


def vms():  # the names of the running container VMs
    popek = os.path.join(os.path.dirname(oci), "popek")
    out = subprocess.run([popek, "ls"], capture_output=True, text=True).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.startswith("oci-"))


def status(cid):
    r = run("state", cid)
    return json.loads(r.stdout)["status"] if r.returncode == 0 else "gone"


sb_out = open(os.path.join(work, "sandbox.out"), "w+b")
sb = create(SB, bundle("sb", ["/bin/sleep", "100000"],
                       {"io.kubernetes.cri.container-type": "sandbox",
                        "io.kubernetes.cri.sandbox-id": SB}), sb_out)
if sb is None:
    sb_out.seek(0)
    print(json.dumps({"error": "sandbox create: " + sb_out.read().decode()[-400:]}))
    sys.exit(1)
run("start", SB)
ann = {"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": SB}
# c1 lists the processes it can see: the sandbox's sleep is among them only
# when both share one kernel; it also writes into its own root.
r1, w1 = os.pipe()
c1 = create("pod-c1", bundle("c1", ["/bin/sh", "-c",
                                   "echo c1 > /c1-was-here; cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^sleep'; ls /c2-was-here 2>&1; exit 4"],
                             ann), w1)
os.close(w1)
# c2 stays up while c1 runs, and must not see c1's files
c2_out = open(os.path.join(work, "c2.out"), "w+b")
c2 = create("pod-c2", bundle("c2", ["/bin/sh", "-c", "echo c2 > /c2-was-here; exec sleep 100000"], ann),
            c2_out)
found["created"] = c1 is not None and c2 is not None
found["status_created"] = status("pod-c1")
found["vms_with_3_containers"] = vms()
if c1 and c2:
    run("start", "pod-c2")
    time.sleep(1)
    found["status_c2"] = status("pod-c2")
    # an exec in a pod container runs in that container's root
    found["exec_c2"] = run("exec", "pod-c2", "/bin/cat", "/c2-was-here").stdout.decode()
    run("start", "pod-c1")
    _, st = os.waitpid(c1, 0)
    found["c1_exit"] = os.waitstatus_to_exitcode(st)
    out = b""
    while True:
        b = os.read(r1, 4096)
        if not b:
            break
        out += b
    found["c1_out"] = out.decode()
    # kill reaches c2's process only; the sandbox stays
    run("kill", "pod-c2", "9")
    _, st = os.waitpid(c2, 0)
    found["c2_exit"] = os.waitstatus_to_exitcode(st)
    found["sandbox_after_c2"] = status(SB)
    found["delete_c1"] = run("delete", "pod-c1").returncode
    found["delete_c2"] = run("delete", "pod-c2").returncode
    # a slot is free again: a third container reuses one, with a fresh root
    r3, w3 = os.pipe()
    c3 = create("pod-c3", bundle("c3", ["/bin/sh", "-c", "ls /c1-was-here /c2-was-here 2>&1 | grep -c 'No such'"], ann), w3)
    os.close(w3)
    if c3:
        run("start", "pod-c3")
        _, st = os.waitpid(c3, 0)
        found["c3_exit"] = os.waitstatus_to_exitcode(st)
        found["c3_out"] = os.read(r3, 4096).decode()
        run("delete", "pod-c3")
run("kill", SB, "9")
try:
    _, st = os.waitpid(sb, 0)
except ChildProcessError:
    pass
found["delete_sandbox"] = run("delete", "--force", SB).returncode
time.sleep(1)
found["vms_after"] = vms()
print(json.dumps(found))
