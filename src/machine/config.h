/* What the user asked for: filled by the CLI, read by the machine. */
#ifndef POPEK_CONFIG_H
#define POPEK_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#define MAX_VCPUS 64

enum console_kind { CONSOLE_STDIO, CONSOLE_FILE };

struct vm_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	uint64_t mem;
	int cpus;
	const char *engine; /* "kvm", "soft" or "auto" */
	enum console_kind console;
	const char *console_path;
	bool stats;
	const char *name; /* control-channel name; NULL = vm-PID */
};

void vm_config_defaults(struct vm_config *c);

#endif
