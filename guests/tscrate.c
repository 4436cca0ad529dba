/* tscrate: the TSC's rate against the CMOS clock (the host's wall clock, in
 * whole seconds). Each round counts the TSC ticks from one second's edge to
 * the next and prints them as kHz, so a migration that changed the rate the
 * TSC counts at shows in the rounds after it (the round the move falls in
 * reads low: the TSC stands still for the downtime, the wall clock does not).
 * cmdline: rounds=N (default 30). */
#include "guest.h"
#include "io.h"

const char guest_name[] = "tscrate";

#define CMOS_INDEX  0x70
#define CMOS_DATA   0x71
#define REG_SECONDS 0x00

static uint8_t seconds(void)
{
	outb(CMOS_INDEX, REG_SECONDS);
	return inb(CMOS_DATA);
}

/* The TSC at the next change of the seconds register. */
static uint64_t next_edge(void)
{
	uint8_t s = seconds();
	while (seconds() == s)
		cpu_relax();
	return rdtsc();
}

int guest_main(const struct boot_info *bi)
{
	uint64_t rounds = boot_arg(bi, "rounds", 30), t0 = next_edge();
	for (uint64_t r = 0; r < rounds; r++) {
		uint64_t t1 = next_edge();
		kprintf("tscrate: round %lu %lu kHz\n", r, (t1 - t0) / 1000);
		t0 = t1;
	}
	return 0;
}
