/* hello: the smallest guest. Proves the boot path (multiboot, PVH or ELF64),
 * the serial console and debug-exit. */
#include "guest.h"

const char guest_name[] = "hello";

int guest_main(const struct boot_info *bi)
{
	kprintf("Hello from popek guest\n");
	kprintf("hello: booted via %s, %lu MiB RAM\n", bi->protocol, bi->ram_bytes >> 20);
	if (bi->cmdline[0])
		kprintf("hello: cmdline: %s\n", bi->cmdline);
	return 0;
}
