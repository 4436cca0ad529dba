/* Fuzz the Linux loader with arbitrary kernel images: whatever the bytes, it
 * either loads into guest RAM or refuses with a message, never touching
 * memory it does not own. The input's last 4 KiB doubles as an initrd. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "boot/linux.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem mem;
	static struct cpu_state st;
	static struct vm_config cfg;
	static int ready;
	char err[256];
	if (!ready) {
		if (guest_mem_init(&mem, 32ull << 20, err, sizeof(err)))
			abort();
		vm_config_defaults(&cfg);
		cfg.cmdline = "console=ttyS0";
		ready = 1;
	}
	size_t rd = size > 4096 ? 4096 : size / 2;
	struct boot_args a = {.cfg = &cfg,
			      .mem = &mem,
			      .ncpus = 1,
			      .kernel = data,
			      .kernel_len = size,
			      .initrd = data + size - rd,
			      .initrd_len = rd};
	err[0] = 0;
	if (linux_probe(data, size) && linux_load(&a, &st, err, sizeof(err)) && !err[0])
		abort(); /* a refusal must say why */
	return 0;
}
