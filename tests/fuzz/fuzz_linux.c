/* Fuzz the Linux loader with arbitrary kernel images (bzImage setup header
 * and payload, vmlinux ELF): whatever the bytes, it either loads into guest
 * RAM or refuses with a message, never touching memory it does not own. */
#include "boot/linux.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpu_state *st;
	char *err;
	size_t errlen;
	struct boot_args *a = fuzz_boot_args(data, size, &st, &err, &errlen);
	if (linux_probe(data, size))
		fuzz_boot_check(linux_load(a, st, err, errlen), err);
	return 0;
}
