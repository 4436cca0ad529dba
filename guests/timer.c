/* timer: the local APIC timer, periodic then one-shot.
 * Periodic: N ticks counted with sti+hlt; each tick is EOI'd, so the next one
 * can only arrive if EOI works; afterwards no vector may be left in service.
 * One-shot: exactly one tick, and the current count ends at 0. The TSC must
 * advance across both. */
#include "guest.h"

const char guest_name[] = "timer";

#define VEC_PERIODIC 0x40
#define VEC_ONESHOT  0x41
#define VEC_SPURIOUS 0xff
#define TICKS	     10
#define DIV_16	     0x3
/* 62500 bus clocks / 16 = 1 ms at the 1 GHz APIC bus KVM and QEMU model */
#define PERIOD_COUNT	      62500
#define ONESHOT_COUNT	      125000
#define FIRST_TICK_TIMEOUT_US 2000000

static volatile unsigned periodic_ticks, oneshot_ticks;

static void on_periodic(struct trap_frame *f)
{
	(void)f;
	periodic_ticks++;
	lapic_eoi();
}

static void on_oneshot(struct trap_frame *f)
{
	(void)f;
	oneshot_ticks++;
	lapic_eoi();
}

static void on_spurious(struct trap_frame *f)
{
	(void)f; /* no EOI for the spurious vector */
}

/* Wait for *counter to reach n. The first wait polls with a TSC timeout so a
 * timer that never fires fails the test instead of hanging in hlt. */
static void wait_ticks(volatile unsigned *counter, unsigned n, const char *what)
{
	uint64_t end = tsc_deadline_us(FIRST_TICK_TIMEOUT_US);

	sti();
	while (*counter == 0) {
		if (rdtsc() > end) {
			cli();
			fail("%s timer never fired (LVT %#x, current count %u)", what,
			     lapic_read(LAPIC_LVT_TIMER), lapic_read(LAPIC_TIMER_CUR));
		}
		cpu_relax();
	}
	while (*counter < n)
		sti_hlt();
	cli();
}

static void check_nothing_in_service(void)
{
	for (unsigned i = 0; i < 8; i++)
		if (lapic_read(LAPIC_ISR + 0x10 * i))
			fail("ISR[%u] = %#x after EOI", i, lapic_read(LAPIC_ISR + 0x10 * i));
}

int guest_main(const struct boot_info *bi)
{
	uint64_t t0, t1, t2;

	(void)bi;
	pic_disable();
	trap_set_handler(VEC_PERIODIC, on_periodic);
	trap_set_handler(VEC_ONESHOT, on_oneshot);
	trap_set_handler(VEC_SPURIOUS, on_spurious);
	lapic_enable(VEC_SPURIOUS);
	kprintf("timer: LAPIC id %u, version %#x\n", lapic_id(), lapic_read(0x30));

	lapic_write(LAPIC_TIMER_DIV, DIV_16);
	lapic_write(LAPIC_LVT_TIMER, LAPIC_TIMER_PERIODIC | VEC_PERIODIC);
	t0 = rdtsc();
	lapic_write(LAPIC_TIMER_INIT, PERIOD_COUNT);
	wait_ticks(&periodic_ticks, TICKS, "periodic");
	t1 = rdtsc();
	lapic_write(LAPIC_LVT_TIMER, LAPIC_MASKED);
	lapic_write(LAPIC_TIMER_INIT, 0);
	check_nothing_in_service();
	if (t1 <= t0)
		fail("TSC did not advance over %u ticks", TICKS);
	kprintf("timer: %u periodic ticks in %lu TSC cycles (~%lu us)\n", periodic_ticks, t1 - t0,
		(t1 - t0) / (tsc_hz() / 1000000));

	lapic_write(LAPIC_LVT_TIMER, VEC_ONESHOT); /* one-shot mode */
	lapic_write(LAPIC_TIMER_INIT, ONESHOT_COUNT);
	wait_ticks(&oneshot_ticks, 1, "one-shot");
	sti(); /* a second tick would arrive in these 10 ms if the mode were periodic */
	tsc_delay_us(10000);
	cli();
	t2 = rdtsc();
	if (oneshot_ticks != 1)
		fail("one-shot timer fired %u times", oneshot_ticks);
	if (lapic_read(LAPIC_TIMER_CUR) != 0)
		fail("one-shot current count is %u after it fired", lapic_read(LAPIC_TIMER_CUR));
	check_nothing_in_service();
	if (t2 <= t1)
		fail("TSC did not advance during the one-shot test");
	kprintf("timer: one-shot fired once, current count 0\n");
	return 0;
}
