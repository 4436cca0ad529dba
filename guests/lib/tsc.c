/* TSC time keeping. The frequency comes from CPUID when the CPU or hypervisor
 * reports it; otherwise 2 GHz is assumed, which only scales timeouts and delays. */
#include "guest.h"

#define TSC_HZ_DEFAULT 2000000000ull
#define HV_LEAF_BASE   0x40000000
#define HV_LEAF_TIMING 0x40000010 /* EAX = TSC kHz (KVM/VMware convention) */

static uint64_t cached_hz;

static uint64_t probe_hz(void)
{
	uint32_t r[4];

	cpuid(0, 0, r);
	if (r[0] >= 0x15) {
		cpuid(0x15, 0, r); /* TSC = crystal (ECX) * EBX / EAX */
		if (r[0] && r[1] && r[2])
			return (uint64_t)r[2] * r[1] / r[0];
	}
	cpuid(0, 0, r);
	if (r[0] >= 0x16) {
		cpuid(0x16, 0, r); /* base frequency in MHz */
		if (r[0])
			return (uint64_t)r[0] * 1000000;
	}
	cpuid(1, 0, r);
	if (r[2] & (1u << 31)) { /* running under a hypervisor */
		cpuid(HV_LEAF_BASE, 0, r);
		if (r[0] >= HV_LEAF_TIMING) {
			cpuid(HV_LEAF_TIMING, 0, r);
			if (r[0])
				return (uint64_t)r[0] * 1000;
		}
	}
	return TSC_HZ_DEFAULT;
}

uint64_t tsc_hz(void)
{
	if (!cached_hz)
		cached_hz = probe_hz();
	return cached_hz;
}

uint64_t tsc_deadline_us(uint64_t us)
{
	return rdtsc() + tsc_hz() / 1000000 * us;
}

void tsc_delay_us(uint64_t us)
{
	uint64_t end = tsc_deadline_us(us);

	while (rdtsc() < end)
		cpu_relax();
}
