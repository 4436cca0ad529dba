/* The Linux x86 64-bit boot protocol: a bzImage (setup header + protected-mode
 * kernel) or a vmlinux ELF, entered in long mode with a boot_params zero page. */
#ifndef POPEK_LINUX_H
#define POPEK_LINUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"

/* True if img is a bzImage ("HdrS" setup header) or a Linux vmlinux ELF. It
 * does not validate a bzImage: linux_load() says precisely what is wrong. */
bool linux_probe(const uint8_t *img, size_t len);
/* linux_probe on the file at path; false if it cannot be read (boot_load
 * then says why). */
bool linux_probe_file(const char *path);

/* Load kernel, initrd and command line, build the zero page at BOOT_INFO
 * (e820, a->rsdp) and switch st (prepared with the boot GDT, as boot_load
 * does) to the 64-bit entry state. Returns 0, or -1 with a message in err
 * naming the problem and the fix. */
int linux_load(struct boot_args *a, struct cpu_state *st, char *err, size_t errlen);

#endif
