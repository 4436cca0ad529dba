/* triplefault: with an empty IDT (limit 0) an exception cannot be delivered,
 * nor can the resulting #GP or #DF: the CPU shuts down. QEMU -no-reboot exits;
 * popek must report a crash. Getting past ud2 is a failure. */
#include "guest.h"

const char guest_name[] = "triplefault";

int guest_main(const struct boot_info *bi)
{
	(void)bi;
	kprintf("triplefault: about to triple fault\n");
	trap_load_empty_idt();
	__asm__ volatile("ud2");
	trap_load_idt();
	fail("still running after ud2 with an empty IDT");
}
