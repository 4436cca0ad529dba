/* cmos: reads CMOS status register D through the index/data ports 0x70/0x71.
 * Its VRT bit (0x80, "time valid") is set on popek and QEMU; with "modified"
 * on the command line the guest expects 0 instead (run under the policy rule
 * `modify pio read port 0x71 value 0x00`). */
#include "guest.h"
#include "io.h"

const char guest_name[] = "cmos";

#define CMOS_INDEX 0x70
#define CMOS_DATA  0x71
#define REG_D	   0x0d

int guest_main(const struct boot_info *bi)
{
	uint8_t want = boot_flag(bi, "modified") ? 0x00 : 0x80;
	outb(CMOS_INDEX, REG_D);
	uint8_t d = inb(CMOS_DATA);
	kprintf("cmos: register D = %#x\n", d);
	if (d != want)
		fail("register D is %#x, expected %#x", d, want);
	return 0;
}
