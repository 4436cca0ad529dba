/* What the user asked for: filled by the CLI, read by the machine. */
#ifndef POPEK_CONFIG_H
#define POPEK_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#define MAX_VCPUS 64

enum console_kind { CONSOLE_STDIO, CONSOLE_FILE };

#define MAX_DISKS 8

struct disk_config {
	const char *path; /* raw image, attached as virtio-blk */
	bool ro;
};

struct vm_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	uint64_t mem;
	bool mem_set; /* --mem given (else a default that depends on the guest) */
	int cpus;
	const char *engine; /* "kvm", "soft" or "auto" */
	enum console_kind console;
	const char *console_path;
	bool stats;
	int ndisks;
	struct disk_config disk[MAX_DISKS];
	const char *name; /* control-channel name; NULL = vm-PID */
	/* Restore: RAM comes copy-on-write from ram_fd (>= 0) and no kernel is
	 * loaded; the snapshot code then loads vCPU, VM and device state. */
	int ram_fd;
	/* The jail (docs/jail.md): on unless --no-jail; jail_set: --jail was
	 * given, so a host that cannot build it is an error, not a warning. */
	bool jail, jail_set;
	int cpu_quota;	    /* --cpu-quota: percent of one host CPU; 0 = no limit */
	uint64_t mem_limit; /* --mem-limit: bytes; 0 = no limit */
};

void vm_config_defaults(struct vm_config *c);

#endif
