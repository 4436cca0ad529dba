/* smp: start the second CPU (APIC ID 1) with INIT-SIPI-SIPI through a real-mode
 * trampoline, then let both CPUs increment a shared counter with LOCK at the
 * same time, and a plain one under a test-and-set spin lock taken with LOCK
 * CMPXCHG (the lock Linux uses on a hypervisor without paravirtual spin
 * locks): no increment may be lost. Run with 2 vCPUs. */
#include "guest.h"

const char guest_name[] = "smp";

#define AP_APIC_ID    1
#define INCREMENTS    20000
#define AP_TIMEOUT_US 3000000

static volatile uint32_t ap_apic_id = ~0u;
static volatile bool go, ap_done;
static uint64_t counter;
static volatile int lock;
static volatile uint64_t locked_counter;

static void add_many(void)
{
	for (unsigned i = 0; i < INCREMENTS; i++)
		__atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED); /* lock add */
	for (unsigned i = 0; i < INCREMENTS; i++) {
		int free = 0;
		while (lock || !__atomic_compare_exchange_n((int *)&lock, &free, 1, false,
							    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			free = 0;
			cpu_relax();
		}
		locked_counter = locked_counter + 1;
		__atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
	}
}

static void ap_main(void)
{
	ap_apic_id = lapic_id();
	while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
		cpu_relax();
	add_many();
	__atomic_store_n(&ap_done, true, __ATOMIC_RELEASE);
}

int guest_main(const struct boot_info *bi)
{
	uint64_t end;

	(void)bi;
	pic_disable();
	lapic_enable(0xff);
	if (lapic_id() == AP_APIC_ID)
		fail("the boot CPU has the AP's APIC ID %u", AP_APIC_ID);
	if (!smp_start_ap(AP_APIC_ID, ap_main, AP_TIMEOUT_US))
		fail("CPU with APIC ID %u did not start (is the VM running with 2 vCPUs?)",
		     AP_APIC_ID);
	/* The AP is alive before ap_main runs: wait for its first store. */
	end = tsc_deadline_us(AP_TIMEOUT_US);
	while (ap_apic_id == ~0u && rdtsc() < end)
		cpu_relax();
	kprintf("smp: 2 cpus online (BSP APIC ID %u, AP APIC ID %u)\n", lapic_id(), ap_apic_id);
	if (ap_apic_id != AP_APIC_ID)
		fail("the AP reports APIC ID %u", ap_apic_id);

	__atomic_store_n(&go, true, __ATOMIC_RELEASE);
	add_many();
	end = tsc_deadline_us(AP_TIMEOUT_US);
	while (!__atomic_load_n(&ap_done, __ATOMIC_ACQUIRE))
		if (rdtsc() > end)
			fail("the AP did not finish its increments");
		else
			cpu_relax();
	kprintf("smp: counter %lu after %u LOCK increments on each CPU\n", counter, INCREMENTS);
	if (counter != 2 * INCREMENTS)
		fail("counter is %lu, expected %u: increments were lost", counter, 2 * INCREMENTS);
	kprintf("smp: counter %lu after %u increments under a CMPXCHG spin lock on each CPU\n",
		locked_counter, INCREMENTS);
	if (locked_counter != 2 * INCREMENTS)
		fail("the spin lock let both CPUs in: %lu increments of %u",
		     (uint64_t)locked_counter, 2 * INCREMENTS);
	return 0;
}
