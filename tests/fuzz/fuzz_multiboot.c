/* Fuzz the multiboot loader: any image with a header the search finds, the
 * ELF path and the a.out kludge (load/bss addresses from the header). */
#include <stdlib.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpu_state *st;
	char *err;
	size_t errlen;
	struct boot_args *a = fuzz_boot_args(data, size, &st, &err, &errlen);
	uint32_t off;
	if (multiboot_find(data, size, &off) == 0) {
		if (off + 12 > size)
			abort(); /* the header must lie in the image */
		fuzz_boot_check(multiboot_load(a, off, st, err, errlen), err);
	}
	return 0;
}
