/* cmos: reads CMOS status register D through the index/data ports 0x70/0x71.
 * Its VRT bit (0x80, "time valid") is set on popek and QEMU; with "modified"
 * on the command line the guest expects 0 instead (run under the policy rule
 * `modify pio read port 0x71 value 0x00`).
 * "watch": read it every millisecond forever and print each change (a policy
 * replaced live shows up); "flood=N": read it N times as fast as it can,
 * after "wait=MS" milliseconds (time for a tracer to attach). */
#include "guest.h"
#include "io.h"

const char guest_name[] = "cmos";

#define CMOS_INDEX 0x70
#define CMOS_DATA  0x71
#define REG_D	   0x0d

static uint8_t read_d(void)
{
	outb(CMOS_INDEX, REG_D);
	return inb(CMOS_DATA);
}

static void watch(void)
{
	int last = -1;
	for (;;) {
		uint8_t d = read_d();
		if (d != last)
			kprintf("cmos: register D = %#x\n", d);
		last = d;
		tsc_delay_us(1000);
	}
}

int guest_main(const struct boot_info *bi)
{
	if (boot_flag(bi, "watch"))
		watch();
	uint64_t flood = boot_arg(bi, "flood", 0);
	tsc_delay_us(boot_arg(bi, "wait", 0) * 1000);
	for (uint64_t i = 0; i < flood; i++)
		read_d();
	if (flood)
		kprintf("cmos: %lu reads done\n", flood);
	uint8_t want = boot_flag(bi, "modified") ? 0x00 : 0x80;
	uint8_t d = read_d();
	kprintf("cmos: register D = %#x\n", d);
	if (d != want)
		fail("register D is %#x, expected %#x", d, want);
	return 0;
}
