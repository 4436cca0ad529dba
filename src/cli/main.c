/* popek command line: `popek run ...`, `popek help`, `popek --version`. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "machine/machine.h"
#include "oci/oci.h"

void cli_usage(FILE *f)
{
	fprintf(
	    f,
	    "popek %s — a virtual machine monitor\n"
	    "\n"
	    "usage:\n"
	    "  popek run [--kernel FILE] [options] boot a guest (default: the Linux image of make "
	    "image)\n"
	    "  popek restore DIR [options]         continue a VM from a snapshot\n"
	    "  popek ls                            list running VMs\n"
	    "  popek snapshot NAME DIR [--stop] [--compress]  save a running VM\n"
	    "  popek pause|resume|stop|stats NAME  control a running VM\n"
	    "  popek migrate NAME tcp:HOST:PORT|unix:PATH [--max-downtime MS] [--bandwidth B/s]\n"
	    "                [--compress] [--copy-storage] [--postcopy]  move a running VM to a\n"
	    "                popek receive (--postcopy: after one round, pages on first touch)\n"
	    "  popek receive --listen URI [options]  wait for a migrating VM and run it here\n"
	    "                                      (restore options, --net, --disk PATH for each\n"
	    "                                      disk a --copy-storage source sends;\n"
	    "                                      docs/migration.md)\n"
	    "  popek exec [options] -- PROGRAM [ARGS...]  run one Linux program in a VM, no guest "
	    "kernel\n"
	    "                                      (docs/exec.md)\n"
	    "  popek policy NAME [FILE]            print or replace a running VM's policy\n"
	    "  popek trace NAME [--class CLASS]... stream a running VM's actions as JSON lines\n"
	    "  popek switch PATH [--connect SOCK]...  a learning Ethernet switch on a Unix socket\n"
	    "                                      (VMs join with --net socket=PATH; passt with\n"
	    "                                      --connect)\n"
	    "  popek oci COMMAND ...               the OCI runtime (also as popek-oci; "
	    "docs/oci.md)\n"
	    "  popek help                          this text\n"
	    "  popek --version                     print the version\n"
	    "\n"
	    "run options:\n"
	    "  --kernel FILE        ELF (PVH note, multiboot header or 64-bit entry) or multiboot "
	    "image\n"
	    "  --initrd FILE        initial ramdisk / boot module\n"
	    "  --cmdline STR        kernel command line (default for Linux: console=ttyS0 ...);\n"
	    "                       +STR appends STR to the default\n"
	    "  --mem SIZE           guest RAM, e.g. 128M, 2G (default 128M)\n"
	    "  --mem-hugepages      guest RAM on reserved 2 MiB huge pages (hugetlbfs), or fail\n"
	    "  --cpus N             virtual CPUs (default 1)\n"
	    "  --engine NAME        kvm, soft or auto (default auto)\n"
	    "  --console stdio|file:PATH   where guest console output goes (default stdio)\n"
	    "  --stats              print exit/trap counts as JSON on stderr at exit\n"
	    "  --verbose            say how the kernel was loaded (e.g. where a bzImage was\n"
	    "                       decompressed) on stderr\n"
	    "  --decompress host|guest  a bzImage's kernel: decompressed by popek (default),\n"
	    "                       or by the kernel's own decompressor in the guest\n"
	    "  --kernel-cache on|off  keep a bzImage's decompressed kernel for later boots of\n"
	    "                       the same file (default on; $POPEK_CACHE_DIR, else\n"
	    "                       $XDG_CACHE_HOME/popek or ~/.cache/popek)\n"
	    "  --jit on|off         soft engine: translate guest code to host code (default off)\n"
	    "  --disk FILE[,ro][,format=raw]  disk image as virtio-blk (/dev/vda, vdb, ...;\n"
	    "                       repeatable); qcow2 and other formats, found by content,\n"
	    "                       through qemu-storage-daemon; format=raw: raw unprobed,\n"
	    "                       and the guest may write any header to its sector 0\n"
	    "  --disk socket=PATH   a vhost-user-blk backend you started\n"
	    "  --device NAME        an optional device: pc-testdev (test device at ports "
	    "0xe0-0xe3\n"
	    "                       and MMIO 0xff000000, as QEMU's; repeatable)\n"
	    "  --name NAME          name for the control channel (default vm-PID)\n"
	    "  --policy FILE        allow, deny, log, modify, limit, stop or pause guest actions\n"
	    "                       (docs/policy.md); a malformed file is refused (exit 64)\n"
	    "  --audit FILE         append a JSON line per action a policy rule acted on\n"
	    "  --jail / --no-jail   run the VMM jailed: namespaces, empty root, no capabilities,\n"
	    "                       seccomp allowlist (default on where the host allows it)\n"
	    "  --cpu-quota PCT      cgroup CPU limit in percent of one host CPU\n"
	    "  --mem-limit SIZE     cgroup memory limit of the VMM process\n"
	    "  --net user[,hostfwd=tcp:[HOSTADDR]:HOSTPORT-:GUESTPORT]...[,restrict=on]\n"
	    "  --net tap=IFNAME | socket=PATH | none   a virtio-net NIC (repeatable; each also\n"
	    "                       takes ,mac=MAC and ,capture=FILE.pcap); the default image\n"
	    "                       gets --net user (docs/networking.md)\n"
	    "  --fs HOSTDIR,tag=TAG[,ro] | socket=PATH,tag=TAG   share a host folder (virtio-fs\n"
	    "                       over virtiofsd, which popek starts, or one you started);\n"
	    "                       the guest mounts it: mount -t virtiofs TAG /mnt\n"
	    "                       (docs/vhost-user.md)\n"
	    "  --vsock cid=N,uds=PATH   virtio-vsock: host programs connect to PATH and send\n"
	    "                       CONNECT PORT; the guest reaches PATH_PORT (docs/vsock.md)\n"
	    "\n"
	    "restore options: --engine, --name, --console, --stats, --policy, --audit, --jail,\n"
	    "  --no-jail, --cpu-quota, --mem-limit, --jit as for run, and\n"
	    "  --clones N           start N copies sharing unchanged memory (names NAME-1..N)\n"
	    "  --no-verify          skip memory checksums (fastest restore; headers still "
	    "checked)\n"
	    "  --force              restore even if a disk image changed since the snapshot\n"
	    "\n"
	    "exit status: the guest's status (hypercall exit, isa-debug-exit (v<<1)|1), 0 on\n"
	    "power-off; 64 usage, 65 bad kernel/initrd, 69 engine unavailable, 70 VM crashed,\n"
	    "71 host failure, 72 stopped by a policy rule, 73 forbidden system call (jail),\n"
	    "128+N stopped by signal N.\n",
	    POPEK_VERSION);
}

int main(int argc, char **argv)
{
	/* popek-oci is this binary under another name: the OCI runtime */
	const char *base = strrchr(argv[0], '/');
	if (!strcmp(base ? base + 1 : argv[0], "popek-oci"))
		return oci_main(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "oci"))
		return oci_main(argc - 1, argv + 1);
	if (argc < 2) {
		cli_usage(stderr);
		return EXIT_CODE_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("popek %s\n", POPEK_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		cli_usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "restore"))
		return cmd_restore(argc - 1, argv + 1);
	if (!strcmp(cmd, "snapshot"))
		return cmd_snapshot(argc - 1, argv + 1);
	if (!strcmp(cmd, "migrate"))
		return cmd_migrate(argc - 1, argv + 1);
	if (!strcmp(cmd, "receive"))
		return cmd_receive(argc - 1, argv + 1);
	if (!strcmp(cmd, "switch"))
		return cmd_switch(argc - 1, argv + 1);
	if (!strcmp(cmd, "ls"))
		return cmd_ls(argc - 1, argv + 1);
	if (!strcmp(cmd, "exec"))
		return cmd_exec(argc - 1, argv + 1);
	if (!strcmp(cmd, "policy"))
		return cmd_policy(argc - 1, argv + 1);
	if (!strcmp(cmd, "trace"))
		return cmd_trace(argc - 1, argv + 1);
	const char *vmctl[] = {"pause", "resume", "stop", "stats"};
	for (size_t i = 0; i < sizeof(vmctl) / sizeof(vmctl[0]); i++)
		if (!strcmp(cmd, vmctl[i]))
			return cmd_vmctl(cmd, argc - 1, argv + 1);
	fprintf(stderr, "popek: unknown command '%s' — see 'popek help'\n", cmd);
	return EXIT_CODE_USAGE;
}
