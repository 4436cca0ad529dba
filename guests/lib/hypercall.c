/* popek hypercalls: a 32-bit OUT to POPEK_HC_PORT with the number in EAX.
 * Without popek the port is unclaimed, the OUT does nothing and RAX keeps the
 * number, so hc_version() returns 0 (= POPEK_HC_VERSION) there. */
#include "guest.h"

#include "popek/hypercall.h"

long popek_hypercall(long nr, long a0, long a1, long a2, long a3)
{
	long ret = nr;

	__asm__ volatile("outl %%eax, %%dx"
			 : "+a"(ret)
			 : "d"(POPEK_HC_PORT), "D"(a0), "S"(a1), "b"(a2), "c"(a3)
			 : "memory");
	return ret;
}

long hc_version(void)
{
	return popek_hypercall(POPEK_HC_VERSION, 0, 0, 0, 0);
}

long hc_console_write(const void *buf, uint64_t len)
{
	return popek_hypercall(POPEK_HC_CONSOLE_WRITE, (long)buf, (long)len, 0, 0);
}

long hc_get_time(int clock)
{
	return popek_hypercall(POPEK_HC_GET_TIME, clock, 0, 0, 0);
}

long hc_yield(void)
{
	return popek_hypercall(POPEK_HC_YIELD, 0, 0, 0, 0);
}

long hc_exit(long status)
{
	return popek_hypercall(POPEK_HC_EXIT, status, 0, 0, 0);
}
