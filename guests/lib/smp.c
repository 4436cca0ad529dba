/* Bringing up one application processor with INIT-SIPI-SIPI. The AP runs the
 * trampoline (lib/trampoline.S) from a page below 1 MiB, then the same long-mode
 * switch as the BSP, and lands in ap_start64() on its own stack. */
#include "guest.h"

#define TRAMPOLINE_PAGE 0x70000	   /* below 1 MiB, in conventional memory */
#define ICR_INIT	0x00004500 /* INIT, level assert */
#define ICR_STARTUP	0x00004600 /* start-up, vector = page number */

extern const char ap_trampoline[], ap_trampoline_end[];
void ap_start64(void);

static void (*volatile ap_fn)(void);
static volatile uint32_t ap_alive;

void ap_start64(void)
{
	trap_load_idt();
	__atomic_store_n(&ap_alive, 1, __ATOMIC_RELEASE);
	ap_fn();
	for (;;)
		__asm__ volatile("cli; hlt");
}

static bool wait_alive(uint64_t us)
{
	uint64_t end = tsc_deadline_us(us);

	while (!__atomic_load_n(&ap_alive, __ATOMIC_ACQUIRE))
		if (rdtsc() > end)
			return false;
		else
			cpu_relax();
	return true;
}

bool smp_start_ap(uint32_t apic_id, void (*fn)(void), uint64_t timeout_us)
{
	memcpy((void *)TRAMPOLINE_PAGE, ap_trampoline, (size_t)(ap_trampoline_end - ap_trampoline));
	ap_fn = fn;
	if (!lapic_send_ipi(apic_id, ICR_INIT))
		return false;
	tsc_delay_us(10000);
	/* the second SIPI is only for CPUs that missed the first one */
	for (int i = 0; i < 2; i++) {
		if (!lapic_send_ipi(apic_id, ICR_STARTUP | (TRAMPOLINE_PAGE >> 12)))
			return false;
		if (wait_alive(i ? timeout_us : 200))
			return true;
	}
	return false;
}
