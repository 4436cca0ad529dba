/* The Linux x86 64-bit boot protocol: a bzImage (setup header + protected-mode
 * kernel) or a vmlinux ELF, entered in long mode with a boot_params zero page. */
#ifndef POPEK_LINUX_H
#define POPEK_LINUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engines/cpu_state.h"
#include "machine/memory.h"

struct linux_args {
	const uint8_t *kernel;
	size_t kernel_len;
	const uint8_t *initrd; /* NULL: none */
	size_t initrd_len;
	const char *cmdline; /* NULL: empty */
	uint64_t rsdp;	     /* guest-physical ACPI RSDP, 0 if none */
};

/* True if img is a bzImage ("HdrS" setup header) or a Linux vmlinux ELF. It
 * does not validate: linux_load() says precisely what is wrong. */
bool linux_probe(const uint8_t *img, size_t len);

/* Load kernel, initrd and command line into mem, build the zero page at
 * BOOT_INFO and set st to the 64-bit entry state. Returns 0, or -1 with a
 * message in err naming the problem and the fix. */
int linux_load(const struct guest_mem *mem, const struct linux_args *a, struct cpu_state *st,
	       char *err, size_t errlen);

#endif
