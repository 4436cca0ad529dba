/* Fuzz the boot protocol dispatcher with arbitrary kernel images: Linux,
 * PVH note, multiboot (ELF or a.out kludge) and popek's plain ELF64
 * protocol are all picked from the bytes, as for --kernel. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpu_state *st;
	char *err;
	size_t errlen;
	struct boot_args *a = fuzz_boot_args(data, size, &st, &err, &errlen);
	fuzz_boot_check(boot_load_image(a, st, err, errlen), err);
	return 0;
}
