/* The soft engine's VM-wide snapshot (engines/vm_state.h): PIC, IOAPIC, PIT
 * and clock state taken from one intc restore into another and keep working. */
#include "engines/vm_state.h"
#include "intc_test.h"

#define MS     1000000ull
#define PIT_HZ 1193182ull

static void round_trip(void **state)
{
	struct soft_intc *a = test_intc(1), *b = test_intc(1);
	pic_init_linux(a, 0x01);
	outb(a, 0x21, 0xfe);
	outb(a, 0xa1, 0xbf);
	outb(a, 0x4d1, 0x0c);
	intc_irq_line(a, 1, true); /* masked request stays in IRR */
	ioapic_write(a, 0x10 + 2 * 9, 0x39 | (1u << 15));
	ioapic_write(a, 0x11 + 2 * 9, 0x01000000);
	outb(a, 0x43, 0x34); /* channel 0 at 100 Hz */
	outb(a, 0x40, (PIT_HZ / 100) & 0xff);
	outb(a, 0x40, (PIT_HZ / 100) >> 8);
	outb(a, 0x61, 0x03);
	outb(a, 0x43, 0xb0);
	outb(a, 0x42, 0xff);
	outb(a, 0x42, 0xff);
	outb(a, 0x43, 0x80); /* channel 2 count latched, not read yet */
	sleep_ms(20);

	struct vm_state st;
	intc_get_vm_state(a, &st);
	assert_int_equal(st.pic[0].imr, 0xfe);
	assert_int_equal(st.pic[0].irq_base, 0x20);
	assert_int_equal(st.pic[1].elcr, 0x0c);
	assert_int_equal(st.pit[0].mode, 2);
	assert_int_equal(st.pit[2].count, 0xffff);
	assert_int_equal(st.pit[2].count_latched, 3);
	assert_true(st.pit_speaker);
	assert_true(st.clock_ns >= 20 * MS);

	intc_set_vm_state(b, &st);
	assert_int_equal(inb(b, 0x21), 0xfe);
	assert_int_equal(inb(b, 0xa1), 0xbf);
	assert_int_equal(inb(b, 0x4d1), 0x0c);
	outb(b, 0x20, 0x0a);
	assert_int_equal(inb(b, 0x20) & 0x02, 0x02);
	assert_int_equal(ioapic_read(b, 0x10 + 2 * 9), 0x39 | (1u << 15));
	assert_int_equal(ioapic_read(b, 0x11 + 2 * 9), 0x01000000);
	assert_int_equal(inb(b, 0x61) & 0x03, 0x03);
	uint8_t lo = inb(b, 0x42), hi = inb(b, 0x42); /* the latched count survived */
	assert_int_equal(lo | hi << 8, st.pit[2].latched_count);
	/* Guest time continues from the snapshot, not from b's creation. */
	assert_true(intc_rdtsc(b, 0) >= st.clock_ns);

	/* Channel 0 keeps interrupting at its rate on b. */
	uint64_t t0 = now_ns();
	for (int i = 0; i < 3; i++) {
		assert_int_equal(intc_wait(b, 0, true), INTC_WAKE_READY);
		assert_int_equal(intc_ack(b, 0), 0x20);
		outb(b, 0x20, 0x20);
	}
	assert_true(now_ns() - t0 < 500 * MS);
	intc_destroy(a);
	intc_destroy(b);
}

/* A CPU's LAPIC state in x2APIC mode (IA32_APIC_BASE plus the register
 * page, as set_state restores them) comes back in x2APIC mode: 32-bit ID and
 * derived LDR over the MSRs, no MMIO, IPIs by x2APIC destination. The page
 * keeps the ID in bits 31:24, as KVM's does, so it moves between engines. */
static void x2apic_mode_round_trip(void **state)
{
	struct soft_intc *a = test_intc(2), *b = test_intc(2);
	uint8_t page[1024];
	for (int cpu = 0; cpu < 2; cpu++) {
		apic_enable(a, cpu);
		assert_int_equal(wrmsr(a, cpu, 0x1b, rdmsr(a, cpu, 0x1b) | (1u << 10)), 1);
	}
	assert_int_equal(wrmsr(a, 1, 0x808, 0x20), 1); /* TPR */
	uint64_t base = rdmsr(a, 1, 0x1b);
	intc_get_lapic(a, 1, page);
	uint32_t id;
	memcpy(&id, page + 0x20, 4);
	assert_int_equal(id, 1u << 24);
	memset(page + 0xd0, 0xff, 4); /* a hostile LDR is not taken */

	/* b's CPU 1 is in x2APIC mode already: the host goes straight to the state. */
	assert_true(intc_set_apic_base(b, 1, 0xfee00c00));
	assert_true(intc_set_apic_base(b, 1, base));
	intc_set_lapic(b, 1, page);
	assert_int_equal(rdmsr(b, 1, 0x1b), 0xfee00c00);
	assert_int_equal(rdmsr(b, 1, 0x802), 1);
	assert_int_equal(rdmsr(b, 1, 0x80d), 2); /* cluster 0, bit 1 */
	assert_int_equal(rdmsr(b, 1, 0x808), 0x20);
	uint32_t v = 0;
	assert_false(intc_mmio(b, 1, 0xfee00030, &v, 4, false));
	/* CPU 0 of b (xAPIC) sends to x2APIC ID 1 physically: it arrives. */
	apic_enable(b, 0);
	apic_write(b, 0, 0x310, 1u << 24);
	apic_write(b, 0, 0x300, 0x4077);
	assert_int_equal(intc_ack(b, 1), 0x77);
	intc_destroy(a);
	intc_destroy(b);
}

static void hostile_state_is_clamped(void **state)
{
	struct soft_intc *ic = test_intc(1);
	struct vm_state st;
	memset(&st, 0xff, sizeof(st));
	st.pit_speaker = true;
	intc_set_vm_state(ic, &st);
	uint8_t v = inb(ic, 0x40); /* still a working PIT */
	(void)v;
	assert_int_equal(inb(ic, 0x4d0), 0xf8);
	assert_int_equal(ioapic_read(ic, 0), 0x0f000000);
	intc_poll(ic, 0);
	intc_destroy(ic);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(round_trip),
	    cmocka_unit_test(x2apic_mode_round_trip),
	    cmocka_unit_test(hostile_state_is_clamped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
