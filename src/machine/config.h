/* What the user asked for: filled by the CLI, read by the machine. */
#ifndef POPEK_CONFIG_H
#define POPEK_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#define MAX_VCPUS 64

struct policy;

enum console_kind { CONSOLE_STDIO, CONSOLE_FILE };

#define MAX_DISKS 8

/* How a --disk is served: a raw image by popek's own virtio-blk, an image
 * of another format (found by its content) by a qemu-storage-daemon popek
 * starts, a socket by the vhost-user-blk backend the user started there. */
enum disk_kind { DISK_RAW, DISK_IMAGE, DISK_SOCKET };

struct disk_config {
	const char *path; /* the image, or the backend's socket */
	enum disk_kind kind;
	const char *format; /* DISK_IMAGE: QEMU's driver for it ("qcow2") */
	bool ro;
	/* format=raw: raw without looking, and the guest may write any header
	 * to sector 0 (otherwise one that would make the file probe as another
	 * format next time is refused: docs/devices.md). */
	bool format_raw;
	/* Migration: the source holds the image's lock until the handover, when
	 * it is taken (machine_disks_lock). */
	bool lock_later;
};

#define MAX_NICS     4
#define MAX_HOSTFWDS 8

enum net_kind { NET_USER, NET_TAP, NET_SOCKET };

/* hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT (user networking) */
struct net_hostfwd {
	bool udp;
	const char *host_addr, *guest_addr; /* NULL: 127.0.0.1 / the DHCP address */
	uint16_t host_port, guest_port;
};

/* One --net (src/net/config.c parses it). */
struct net_config {
	enum net_kind kind;
	char spec[256];	    /* the argument as given, for snapshots */
	const char *target; /* tap: interface name; socket: the switch's path */
	int nhostfwd;
	struct net_hostfwd hostfwd[MAX_HOSTFWDS];
	bool restricted; /* restrict=on: no outbound connections */
	bool mac_set;
	uint8_t mac[6];
	const char *capture; /* capture=FILE.pcap */
};

#define MAX_FS	   4
#define FS_TAG_MAX 36 /* virtio-fs config: tag[36], not NUL-terminated when full */

/* One --fs: a host folder served by a virtiofsd popek starts, or the socket
 * of a virtiofsd (any vhost-user-fs backend) the user started. */
struct fs_config {
	const char *dir, *socket; /* exactly one is set */
	char tag[FS_TAG_MAX + 1];
	bool ro;
};

/* --vsock cid=N,uds=PATH (docs/vsock.md); cid 0: no vsock device. */
struct vsock_config {
	uint32_t cid; /* the guest's: 3 or more */
	const char *uds;
};

/* Devices a VM has only when asked for (`--device NAME`). */
enum optional_device { DEV_PC_TESTDEV, NR_OPTIONAL_DEVICES };
extern const char *const optional_device_names[NR_OPTIONAL_DEVICES];
/* The device called name, or -1. */
int optional_device_find(const char *name);

struct vm_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	uint64_t mem;
	bool mem_set;	    /* --mem given (else a default that depends on the guest) */
	bool mem_hugepages; /* --mem-hugepages: RAM on reserved 2 MiB pages or fail */
	int cpus;
	const char *engine; /* "kvm", "soft" or "auto" */
	enum console_kind console;
	const char *console_path;
	bool stats;
	bool verbose;	       /* --verbose: say which way the kernel was loaded */
	bool guest_decompress; /* --decompress guest: a bzImage decompresses itself */
	bool no_kernel_cache;  /* --kernel-cache off: decode a bzImage's payload every boot */
	bool jit; /* soft engine: translate guest code (--jit, default on unless POPEK_JIT=off) */
	int ndisks;
	struct disk_config disk[MAX_DISKS];
	bool device[NR_OPTIONAL_DEVICES];
	int nnics;
	struct net_config nic[MAX_NICS];
	bool no_net;	  /* --net none: not even the default image's user networking */
	const char *name; /* control-channel name; NULL = vm-PID */
	/* Restore: RAM comes copy-on-write from ram_fd (>= 0) and no kernel is
	 * loaded; the snapshot code then loads vCPU, VM and device state. */
	int ram_fd;
	/* --policy and --audit, parsed before the VM starts; NULL = allow all. */
	struct policy *policy;
	/* The jail (docs/jail.md): on unless --no-jail; jail_set: --jail was
	 * given, so a host that cannot build it is an error, not a warning. */
	bool jail, jail_set;
	int nfs;
	struct fs_config fs[MAX_FS];
	struct vsock_config vsock;
	/* Restore and migration: the TSC rate (kHz) the guest ran with, which
	 * the engine keeps; 0 = the engine's own. */
	uint32_t tsc_khz;
	int cpu_quota;	    /* --cpu-quota: percent of one host CPU; 0 = no limit */
	uint64_t mem_limit; /* --mem-limit: bytes; 0 = no limit */
};

void vm_config_defaults(struct vm_config *c);

#endif
