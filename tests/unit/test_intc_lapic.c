/* Local APIC of the soft engine: priorities, EOI, the timer in its three modes
 * against wall time, IPIs (fixed, NMI, INIT/SIPI, shorthands), x2APIC MSRs,
 * HLT wake-ups from other threads, and the snapshot page. */
#include <pthread.h>
#include <stdatomic.h>

#include "intc_test.h"

#define MS 1000000ull

static void priorities_and_eoi(void **state)
{
	struct soft_intc *ic = test_intc(1);
	apic_write(ic, 0, 0x300, 0x40050);     /* self-IPI via shorthand: vector 0x50 */
	assert_int_equal(attention(ic, 0), 0); /* software-disabled: dropped */
	apic_enable(ic, 0);
	apic_write(ic, 0, 0x300, 0x40050);
	apic_write(ic, 0, 0x300, 0x40080);
	apic_write(ic, 0, 0x80, 0x90); /* TPR above both */
	assert_int_equal(intc_pending(ic, 0), -1);
	assert_int_equal(attention(ic, 0), 0);
	intc_cr8_write(ic, 0, 0x6);
	assert_int_equal(apic_read(ic, 0, 0x80), 0x60);
	assert_int_equal(intc_cr8_read(ic, 0), 6);
	assert_int_equal(intc_ack(ic, 0), 0x80);
	assert_int_equal(apic_read(ic, 0, 0xa0), 0x80); /* PPR = ISR class */
	assert_int_equal(intc_pending(ic, 0), -1);	/* 0x50 below PPR */
	intc_cr8_write(ic, 0, 0);
	apic_write(ic, 0, 0xb0, 0);
	assert_int_equal(intc_ack(ic, 0), 0x50);
	apic_write(ic, 0, 0xb0, 0);
	assert_int_equal(apic_read(ic, 0, 0xa0), 0);
	assert_int_equal(attention(ic, 0), 0);
	assert_int_equal(apic_read(ic, 0, 0x20), 0);	       /* ID 0 */
	assert_int_equal(apic_read(ic, 0, 0x30) & 0xff, 0x14); /* version */
	intc_destroy(ic);
}

/* Poll like the CPU core until an interrupt is deliverable; ns taken. */
static uint64_t poll_until_irq(struct soft_intc *ic, int cpu, uint64_t limit)
{
	uint64_t t0 = now_ns();
	while (!(attention(ic, cpu) & INTC_ATTN_IRQ) && now_ns() - t0 < limit)
		intc_poll(ic, cpu);
	return now_ns() - t0;
}

static void timer_one_shot(void **state)
{
	struct soft_intc *ic = test_intc(1);
	apic_enable(ic, 0);
	apic_write(ic, 0, 0x3e0, 0xb);	   /* divide by 1 */
	apic_write(ic, 0, 0x320, 0xec);	   /* one-shot, vector 0xec */
	apic_write(ic, 0, 0x380, 20 * MS); /* 20 ms at 1 GHz */
	uint32_t c1 = apic_read(ic, 0, 0x390);
	assert_true(c1 > 0 && c1 <= 20 * MS);
	uint64_t t = poll_until_irq(ic, 0, 2000 * MS);
	assert_true(t >= 19 * MS && t < 1000 * MS);
	assert_int_equal(intc_ack(ic, 0), 0xec);
	assert_int_equal(apic_read(ic, 0, 0x390), 0);
	apic_write(ic, 0, 0xb0, 0);
	sleep_ms(30);
	intc_poll(ic, 0);
	assert_int_equal(attention(ic, 0), 0); /* one shot only */

	/* Switching to periodic keeps the running count; TSC-deadline mode stops it. */
	apic_write(ic, 0, 0x380, 500 * MS);
	apic_write(ic, 0, 0x320, 0x20000 | 0xec);
	assert_true(apic_read(ic, 0, 0x390) > 400 * MS);
	apic_write(ic, 0, 0x320, 0x40000 | 0xec);
	assert_int_equal(apic_read(ic, 0, 0x390), 0);
	assert_int_equal(apic_read(ic, 0, 0x380), 0);
	intc_destroy(ic);
}

static void timer_periodic_with_divider(void **state)
{
	struct soft_intc *ic = test_intc(1);
	apic_enable(ic, 0);
	apic_write(ic, 0, 0x3e0, 0x3);		  /* divide by 16 */
	apic_write(ic, 0, 0x320, 0x20000 | 0xed); /* periodic */
	apic_write(ic, 0, 0x380, 10 * MS / 16);	  /* 10 ms */
	uint64_t t0 = now_ns();
	for (int i = 0; i < 5; i++) {
		/* The vCPU halts between ticks, as an idle guest does. */
		assert_int_equal(intc_wait(ic, 0, true), INTC_WAKE_READY);
		assert_int_equal(intc_ack(ic, 0), 0xed);
		apic_write(ic, 0, 0xb0, 0);
	}
	uint64_t t = now_ns() - t0;
	assert_true(t >= 45 * MS && t < 1000 * MS);
	/* Masking stops interrupts but not the count. */
	apic_write(ic, 0, 0x320, 0x30000 | 0xed);
	sleep_ms(25);
	intc_poll(ic, 0);
	assert_int_equal(attention(ic, 0), 0);
	assert_true(apic_read(ic, 0, 0x390) <= 10 * MS / 16);
	intc_destroy(ic);
}

static void timer_tsc_deadline(void **state)
{
	struct soft_intc *ic = test_intc(1);
	apic_enable(ic, 0);
	apic_write(ic, 0, 0x320, 0x40000 | 0xee);
	apic_write(ic, 0, 0x380, 1000); /* ignored in TSC-deadline mode */
	assert_int_equal(apic_read(ic, 0, 0x380), 0);
	uint64_t t0 = now_ns();
	uint64_t deadline = intc_rdtsc(ic, 0) + 15 * MS * (INTC_TSC_HZ / 1000000000ull);
	assert_int_equal(wrmsr(ic, 0, 0x6e0, deadline), 1);
	assert_int_equal(rdmsr(ic, 0, 0x6e0), deadline);
	assert_int_equal(intc_wait(ic, 0, true), INTC_WAKE_READY);
	uint64_t t = now_ns() - t0;
	assert_true(t >= 14 * MS && t < 1000 * MS);
	assert_true(intc_rdtsc(ic, 0) >= deadline);
	assert_int_equal(rdmsr(ic, 0, 0x6e0), 0); /* disarmed after firing */
	assert_int_equal(intc_ack(ic, 0), 0xee);

	/* A deadline in the past fires at once; leaving the mode disarms. */
	apic_write(ic, 0, 0xb0, 0);
	wrmsr(ic, 0, 0x6e0, 1);
	intc_poll(ic, 0);
	assert_int_equal(intc_ack(ic, 0), 0xee);
	apic_write(ic, 0, 0xb0, 0);
	wrmsr(ic, 0, 0x6e0, intc_rdtsc(ic, 0) + 5 * MS);
	apic_write(ic, 0, 0x320, 0xee);
	assert_int_equal(rdmsr(ic, 0, 0x6e0), 0);
	sleep_ms(10);
	intc_poll(ic, 0);
	assert_int_equal(attention(ic, 0), 0);
	intc_destroy(ic);
}

static void init_sipi_and_nmi_ipis(void **state)
{
	struct soft_intc *ic = test_intc(3);
	uint8_t sipi = 0;
	apic_enable(ic, 0);
	apic_write(ic, 0, 0x310, 1u << 24);
	apic_write(ic, 0, 0x300, 0x4500); /* INIT assert to CPU 1 */
	assert_int_equal(attention(ic, 1), INTC_ATTN_EVENT);
	assert_int_equal(apic_read(ic, 0, 0x300) & (1u << 12), 0); /* delivered */
	apic_write(ic, 0, 0x300, 0x8500);			   /* INIT de-assert: nothing */
	assert_int_equal(intc_take_events(ic, 1, &sipi), INTC_EV_INIT);
	assert_int_equal(attention(ic, 1), 0);
	apic_write(ic, 0, 0x300, 0x4608); /* SIPI, vector 8 */
	assert_int_equal(intc_take_events(ic, 1, &sipi), INTC_EV_SIPI);
	assert_int_equal(sipi, 8);
	assert_int_equal(attention(ic, 2), 0);

	/* INIT to all but self, then SIPI: both APs see both, in one take. */
	apic_write(ic, 0, 0x300, 0xc4500);
	apic_write(ic, 0, 0x300, 0xc4609);
	assert_int_equal(attention(ic, 0), 0);
	for (int cpu = 1; cpu < 3; cpu++) {
		assert_int_equal(intc_take_events(ic, cpu, &sipi), INTC_EV_INIT | INTC_EV_SIPI);
		assert_int_equal(sipi, 9);
	}
	apic_write(ic, 0, 0x310, 2u << 24);
	apic_write(ic, 0, 0x300, 0x4400); /* NMI to CPU 2 */
	assert_int_equal(intc_take_events(ic, 2, &sipi), INTC_EV_NMI);
	intc_destroy(ic);
}

static void fixed_ipis_and_errors(void **state)
{
	struct soft_intc *ic = test_intc(2);
	apic_enable(ic, 0);
	apic_enable(ic, 1);
	apic_write(ic, 0, 0x310, 1u << 24);
	apic_write(ic, 0, 0x300, 0x4061);
	assert_int_equal(intc_ack(ic, 1), 0x61);
	apic_write(ic, 0, 0x300, 0x80062); /* all including self */
	assert_int_equal(intc_ack(ic, 0), 0x62);
	assert_int_equal(intc_pending(ic, 1), -1); /* 0x62 is below 0x61 in service */
	apic_write(ic, 1, 0xb0, 0);
	assert_int_equal(intc_ack(ic, 1), 0x62);
	apic_write(ic, 0, 0x300, 0x4003); /* illegal vector */
	apic_write(ic, 0, 0x280, 0);	  /* latch errors */
	assert_int_equal(apic_read(ic, 0, 0x280), 1u << 5);
	apic_write(ic, 0, 0x280, 0);
	assert_int_equal(apic_read(ic, 0, 0x280), 0);
	intc_destroy(ic);
}

static void x2apic_msrs(void **state)
{
	struct soft_intc *ic = test_intc(2);
	uint64_t v;
	assert_int_equal(intc_msr(ic, 0, 0x802, &v, false), -1); /* not in x2APIC mode */
	assert_int_equal(rdmsr(ic, 0, 0x1b), 0xfee00900);
	assert_int_equal(rdmsr(ic, 1, 0x1b), 0xfee00800);
	assert_int_equal(wrmsr(ic, 0, 0x1b, 0xfee00d00), 1);
	assert_int_equal(rdmsr(ic, 0, 0x802), 0);
	assert_int_equal(rdmsr(ic, 0, 0x80d), 1); /* LDR: cluster 0, bit 0 */
	uint32_t dummy = 0;
	assert_false(intc_mmio(ic, 0, 0xfee00020, &dummy, 4, false)); /* MMIO is off */
	assert_int_equal(wrmsr(ic, 0, 0x80f, 0x1ff), 1);
	assert_int_equal(wrmsr(ic, 0, 0x80b, 1), -1); /* EOI must be 0 */
	assert_int_equal(wrmsr(ic, 0, 0x802, 5), -1); /* ID is read-only */
	assert_int_equal(intc_msr(ic, 0, 0x831, &v, false), -1);
	assert_int_equal(wrmsr(ic, 0, 0x1b, 0xfee00900), -1); /* x2APIC -> xAPIC */

	apic_enable(ic, 1);
	assert_int_equal(wrmsr(ic, 0, 0x830, (1ull << 32) | 0x4070), 1);
	assert_int_equal(intc_ack(ic, 1), 0x70);
	assert_int_equal(wrmsr(ic, 0, 0x83f, 0x71), 1); /* self IPI */
	assert_int_equal(intc_ack(ic, 0), 0x71);
	assert_int_equal(rdmsr(ic, 0, 0x800 + 0x10 + 3), 1u << (0x71 - 96)); /* ISR */
	assert_int_equal(wrmsr(ic, 0, 0x80b, 0), 1);
	assert_int_equal(rdmsr(ic, 0, 0x800 + 0x10 + 3), 0);
	assert_int_equal(wrmsr(ic, 1, 0x1b, 0xfee00400), -1); /* EXTD without EN */
	assert_int_equal(wrmsr(ic, 1, 0x1b, 0x1ull << 60), -1);
	intc_destroy(ic);
}

/* IA32_APIC_BASE: the SDM's mode transitions for the guest, any valid state
 * for the host, reserved bits from MAXPHYADDR (40) up, and the EN bit that
 * CPUID.1:EDX.APIC follows. */
static void apic_base_modes(void **state)
{
	struct soft_intc *ic = test_intc(1);
	assert_true(intc_apic_enabled(ic, 0));
	assert_int_equal(wrmsr(ic, 0, 0x1b, 0xfee00900 | (1ull << 40)), -1);
	assert_int_equal(wrmsr(ic, 0, 0x1b, 0xfee00901), -1);
	assert_int_equal(wrmsr(ic, 0, 0x1b, 0x8000000900ull), 1); /* bit 39: still an address */
	assert_int_equal(wrmsr(ic, 0, 0x1b, 0xfee00100), 1);	  /* disabled */
	assert_false(intc_apic_enabled(ic, 0));
	uint32_t v = 0;
	assert_false(intc_mmio(ic, 0, 0xfee00030, &v, 4, false)); /* not an APIC any more */
	assert_int_equal(wrmsr(ic, 0, 0x1b, 0xfee00500), -1);	  /* EXTD without EN */
	assert_int_equal(wrmsr(ic, 0, 0x1b, 0xfee00d00), -1);	  /* disabled -> x2APIC */
	assert_int_equal(wrmsr(ic, 0, 0x1b, 0xfee00900), 1);
	assert_true(intc_apic_enabled(ic, 0));
	assert_int_equal(apic_read(ic, 0, 0x30) & 0xff, 0x14);
	assert_int_equal(wrmsr(ic, 0, 0x1b, 0xfee00d00), 1);
	assert_int_equal(wrmsr(ic, 0, 0x1b, 0xfee00900), -1); /* x2APIC -> xAPIC */
	assert_int_equal(wrmsr(ic, 0, 0x1b, 0xfee00500), -1);
	/* The host sets any valid state directly; BSP stays what it is. */
	assert_true(intc_set_apic_base(ic, 0, 0xfee00800));
	assert_int_equal(rdmsr(ic, 0, 0x1b), 0xfee00900);
	assert_int_equal(apic_read(ic, 0, 0x30) & 0xff, 0x14);
	assert_true(intc_set_apic_base(ic, 0, 0));
	assert_true(intc_set_apic_base(ic, 0, 0xfee00c00));
	assert_int_equal(rdmsr(ic, 0, 0x80d), 1); /* LDR derived on entry */
	assert_false(intc_set_apic_base(ic, 0, 0xfee00400));
	assert_false(intc_set_apic_base(ic, 0, 1ull << 40));
	assert_int_equal(rdmsr(ic, 0, 0x1b), 0xfee00d00);
	intc_destroy(ic);
}

struct waiter {
	struct soft_intc *ic;
	int cpu;
	enum intc_wake why;
	atomic_bool woke;
};

static void *halt_thread(void *p)
{
	struct waiter *w = p;
	w->why = intc_wait(w->ic, w->cpu, true);
	atomic_store(&w->woke, true);
	return NULL;
}

static void halt_wakes_on_ipi_and_kick(void **state)
{
	struct soft_intc *ic = test_intc(2);
	apic_enable(ic, 0);
	apic_enable(ic, 1);
	struct waiter w = {ic, 1, 0, false};
	pthread_t t;

	/* Nothing to wake it: still halted 20 ms later (or not yet started,
	 * on a loaded host: the kick then makes its HLT return at once). */
	pthread_create(&t, NULL, halt_thread, &w);
	sleep_ms(20);
	assert_false(atomic_load(&w.woke));
	intc_kick(ic, 1);
	pthread_join(t, NULL);
	assert_int_equal(w.why, INTC_WAKE_KICKED);

	pthread_create(&t, NULL, halt_thread, &w);
	sleep_ms(20);
	apic_write(ic, 0, 0x310, 1u << 24);
	apic_write(ic, 0, 0x300, 0x4090);
	pthread_join(t, NULL);
	assert_int_equal(w.why, INTC_WAKE_READY);
	assert_int_equal(intc_ack(ic, 1), 0x90);

	/* A kick that came first makes the next HLT return at once. */
	intc_kick(ic, 1);
	assert_int_equal(intc_wait(ic, 1, true), INTC_WAKE_KICKED);
	/* HLT with interrupts off ignores IRQs but not INIT. */
	apic_write(ic, 0, 0x300, 0x4091);
	apic_write(ic, 0, 0x300, 0x4500);
	assert_int_equal(intc_wait(ic, 1, false), INTC_WAKE_READY);
	assert_int_equal(intc_take_events(ic, 1, NULL), INTC_EV_INIT);
	intc_destroy(ic);
}

static void snapshot_page_round_trip(void **state)
{
	struct soft_intc *a = test_intc(1), *b = test_intc(1);
	uint8_t page[1024], page2[1024];
	apic_enable(a, 0);
	apic_write(a, 0, 0x80, 0x30);
	apic_write(a, 0, 0xd0, 0x04000000);
	apic_write(a, 0, 0x3e0, 0xb);
	apic_write(a, 0, 0x320, 0x20000 | 0xef);
	apic_write(a, 0, 0x380, 1000 * MS);
	apic_write(a, 0, 0x300, 0x40055);
	intc_get_lapic(a, 0, page);
	uint32_t v;
	memcpy(&v, page + 0xf0, 4);
	assert_int_equal(v, 0x1ff);
	memcpy(&v, page + 0x390, 4);
	assert_true(v > 900 * MS && v <= 1000 * MS);

	intc_set_lapic(b, 0, page);
	assert_int_equal(apic_read(b, 0, 0x80), 0x30);
	assert_int_equal(apic_read(b, 0, 0xd0), 0x04000000);
	assert_int_equal(apic_read(b, 0, 0x320), 0x200ef);
	assert_true(apic_read(b, 0, 0x390) <= v);
	assert_true(apic_read(b, 0, 0x390) > 800 * MS);
	assert_int_equal(intc_ack(b, 0), 0x55);
	intc_get_lapic(b, 0, page2);
	assert_memory_equal(page2 + 0x100, page + 0x200, 0x80); /* ISR now = IRR before */
	intc_destroy(a);
	intc_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(priorities_and_eoi),
	    cmocka_unit_test(timer_one_shot),
	    cmocka_unit_test(timer_periodic_with_divider),
	    cmocka_unit_test(timer_tsc_deadline),
	    cmocka_unit_test(init_sipi_and_nmi_ipis),
	    cmocka_unit_test(fixed_ipis_and_errors),
	    cmocka_unit_test(x2apic_msrs),
	    cmocka_unit_test(apic_base_modes),
	    cmocka_unit_test(halt_wakes_on_ipi_and_kick),
	    cmocka_unit_test(snapshot_page_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
