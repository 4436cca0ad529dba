# A small CRI client: drives containerd's CRI plugin the way the kubelet does,
# with runtime handler "popek", and prints one JSON line of what it saw.
#
# Debian ships no CRI api.proto (no golang-k8s-cri-api-dev), but containerd
# itself carries the compiled descriptor of the very API it serves (gogo
# protobuf registers each .proto as a gzipped FileDescriptorProto in the
# binary). The stubs are made at run time from that descriptor with
# python3-protobuf, and called through python3-grpcio's generic channel.
#
# usage: cri.py CONTAINERD_BINARY SOCKET IMAGE WORKDIR POPEK
import json, os, subprocess, sys, time, zlib

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

binary, sock, image, work, popek = sys.argv[1:6]


def vms():  # how many container VMs run (popek ls)
    out = subprocess.run([popek, "ls"], capture_output=True, text=True).stdout
    return sum(line.startswith("oci-") for line in out.splitlines())


def cri_descriptor(path):
    data = open(path, "rb").read()
    i = 0
    while (i := data.find(b"\x1f\x8b\x08", i)) >= 0:
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[i:i + (1 << 20)])
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
            if fd.package == "runtime.v1" and any(s.name == "RuntimeService" for s in fd.service):
                return fd
        except Exception:
            pass
        i += 3
    sys.exit(f"no runtime.v1 CRI descriptor in {path}")


fd = cri_descriptor(binary)
# gogo.proto only adds Go code-generation options; the wire format does not need it
del fd.dependency[:]
fd.ClearField("options")
for m in fd.message_type:
    m.ClearField("options")
    for f in m.field:
        f.ClearField("options")
pool = descriptor_pool.DescriptorPool()
pool.Add(fd)
factory = message_factory.MessageFactory(pool)  # protobuf 3.21 (Debian 12)


def msg(type_name, **fields):
    cls = factory.GetPrototype(pool.FindMessageTypeByName("runtime.v1." + type_name))
    return cls(**fields)


channel = grpc.insecure_channel("unix://" + sock)


def call(method, request):
    m = pool.FindServiceByName("runtime.v1.RuntimeService").methods_by_name[method]
    out = factory.GetPrototype(m.output_type)
    stub = channel.unary_unary(f"/runtime.v1.RuntimeService/{method}",
                               request_serializer=lambda r: r.SerializeToString(),
                               response_deserializer=out.FromString)
    return stub(request, timeout=600)


found = {}
found["runtime"] = call("Version", msg("VersionRequest")).runtime_name
logdir = os.path.join(work, "pod-logs")
os.makedirs(logdir, exist_ok=True)
# host network: no CNI plugin is set up for this private containerd
sandbox_cfg = msg("PodSandboxConfig",
                  metadata=msg("PodSandboxMetadata", name="popek-pod", uid="u-1", namespace="test"),
                  hostname="popek-pod", log_directory=logdir,
                  linux=msg("LinuxPodSandboxConfig",
                            security_context=msg("LinuxSandboxSecurityContext",
                                                 namespace_options=msg("NamespaceOption",
                                                                       network=2))))
pod = call("RunPodSandbox", msg("RunPodSandboxRequest", config=sandbox_cfg,
                                runtime_handler="popek")).pod_sandbox_id
found["pod_ready"] = call("PodSandboxStatus", msg("PodSandboxStatusRequest",
                                                  pod_sandbox_id=pod)).status.state == 0
found["vms_with_pod"] = vms()


def container(name, args):
    cfg = msg("ContainerConfig", metadata=msg("ContainerMetadata", name=name),
              image=msg("ImageSpec", image=image), command=args[:1], args=args[1:],
              log_path=name + ".log")
    cid = call("CreateContainer", msg("CreateContainerRequest", pod_sandbox_id=pod, config=cfg,
                                      sandbox_config=sandbox_cfg)).container_id
    call("StartContainer", msg("StartContainerRequest", container_id=cid))
    return cid


def wait_exited(cid):
    for _ in range(600):
        st = call("ContainerStatus", msg("ContainerStatusRequest", container_id=cid)).status
        if st.state == 2:  # CONTAINER_EXITED
            return st.exit_code
        time.sleep(0.5)
    return None


# the processes the container sees include the sandbox's: one kernel, one VM
cid = container("hello", ["/bin/sh", "-c",
                          "echo hello from a popek pod; cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^sleep'; exit 3"])
found["exit_code"] = wait_exited(cid)
time.sleep(1)
# CRI log lines: TIME STREAM TAG TEXT
lines = open(os.path.join(logdir, "hello.log")).read().splitlines()
found["log"] = [line.split(" ", 3)[3] for line in lines if line.count(" ") >= 3]
found["vms_after_container"] = vms()
call("RemoveContainer", msg("RemoveContainerRequest", container_id=cid))
call("StopPodSandbox", msg("StopPodSandboxRequest", pod_sandbox_id=pod))
call("RemovePodSandbox", msg("RemovePodSandboxRequest", pod_sandbox_id=pod))
found["pods_left"] = len(call("ListPodSandbox", msg("ListPodSandboxRequest")).items)
found["vms_left"] = vms()
print(json.dumps(found))
