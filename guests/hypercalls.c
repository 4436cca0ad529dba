/* hypercalls: every popek hypercall once, including the error paths, then
 * POPEK_HC_EXIT(0). Without popek (QEMU) the version call returns 0: FAIL.
 * With "yield-denied" on the command line yield must return -EPERM (run
 * under the policy rule `deny hypercall nr 4`). */
#include "guest.h"

#include "popek/hypercall.h"

const char guest_name[] = "hypercalls";

#define NSEC_2020     1577836800000000000ll /* 2020-01-01T00:00:00Z */
#define BAD_GPA	      0xfffffffff000ll
#define INVALID_HC_NR 0x7fff

static const char msg[] = "hypercalls: hello through console_write\n";

int guest_main(const struct boot_info *bi)
{
	long ver, r, t1, t2, now, want_yield;

	want_yield = boot_flag(bi, "yield-denied") ? -POPEK_EPERM : 0;
	ver = hc_version();
	if (ver == POPEK_HC_VERSION)
		fail("no popek hypercall interface");
	kprintf("hypercalls: version %ld\n", ver);
	if (ver != POPEK_HC_ABI_VERSION)
		fail("version %ld, expected %d", ver, POPEK_HC_ABI_VERSION);

	r = hc_console_write(msg, sizeof(msg) - 1);
	if (r != (long)sizeof(msg) - 1)
		fail("console_write returned %ld, expected %zu", r, sizeof(msg) - 1);

	t1 = hc_get_time(POPEK_CLOCK_MONOTONIC);
	tsc_delay_us(2000);
	t2 = hc_get_time(POPEK_CLOCK_MONOTONIC);
	kprintf("hypercalls: monotonic %ld -> %ld ns\n", t1, t2);
	if (t1 < 0 || t2 <= t1)
		fail("monotonic clock did not advance (%ld, %ld)", t1, t2);

	now = hc_get_time(POPEK_CLOCK_REALTIME);
	kprintf("hypercalls: realtime %ld s since the epoch\n", now / 1000000000);
	if (now < NSEC_2020)
		fail("realtime %ld is before 2020", now);

	if ((r = hc_get_time(2)) != -POPEK_EINVAL)
		fail("get_time(2) returned %ld, expected %d", r, -POPEK_EINVAL);
	if ((r = hc_yield()) != want_yield)
		fail("yield returned %ld, expected %ld", r, want_yield);
	if ((r = popek_hypercall(INVALID_HC_NR, 0, 0, 0, 0)) != -POPEK_ENOSYS)
		fail("hypercall %#x returned %ld, expected %d", INVALID_HC_NR, r, -POPEK_ENOSYS);
	if ((r = hc_console_write((const void *)BAD_GPA, 16)) != -POPEK_EFAULT)
		fail("console_write(%#llx) returned %ld, expected %d", BAD_GPA, r, -POPEK_EFAULT);
	if ((r = hc_console_write(msg, POPEK_HC_CONSOLE_MAX + 1)) != -POPEK_EINVAL)
		fail("console_write of %d bytes returned %ld, expected %d",
		     POPEK_HC_CONSOLE_MAX + 1, r, -POPEK_EINVAL);

	kprintf("PASS %s\n", guest_name);
	hc_exit(0);
	fail("exit hypercall returned");
}
